"""Sign-up: a new customer registers, confirms their e-mail and logs in.

Runs against the target named ``default`` (SYNTHETIC_TARGETS__DEFAULT__BASE_URL). The customer
is recorded in the cleanup ledger *before* it is created (``t.intend``), with a key that its name
carries: if the agent dies while the create is under way, the next sweep finds it by that key
and deletes it. Every answer is validated with the models in ``_models.py``: a missing or
malformed field fails the test and names the field.
"""

from __future__ import annotations

import uuid

from _models import Customer, CustomerList, NewCustomer, Session, parse

from synthetic_exporter import JanitorContext, Orphan, Resource, Suite, T

suite = Suite("signup", timeout="30s", tags=["customers"])


@suite.janitor("customer")
async def delete_customer(j: JanitorContext, customer: Resource) -> None:
    """Delete a test customer (already gone counts as deleted)."""
    r = await j.http.delete(f"/customers/{customer.id}")
    assert r.status_code in (204, 404), r.text


@suite.orphans("customer")
async def find_synthetic_customers(j: JanitorContext) -> list[Orphan]:
    """Every synthetic customer, with its creation time and its name (which carries the key)."""
    r = await j.http.get("/customers")
    assert r.status_code == 200, r.text
    return [Orphan(c.id, c.created_at, marker=c.name) for c in parse(CustomerList, r).items]


@suite.test
async def create_customer(t: T) -> None:
    """Register with a unique e-mail address."""
    key = t.intend("customer")  # in the ledger before the request: nothing can leak
    email = f"synthetic+{uuid.uuid4().hex[:12]}@example.com"
    password = uuid.uuid4().hex
    r = await t.http.post(
        "/customers", json={"email": email, "name": f"Synthetic {key}", "password": password}
    )
    assert r.status_code == 201, r.text
    customer = parse(NewCustomer, r)
    t.track("customer", customer.id, key=key, email=email)
    assert customer.email == email
    assert not customer.confirmed
    t.state.update(customer=customer, password=password)


@suite.test
async def confirm_email(t: T) -> None:
    """Confirm the address with the token the confirmation e-mail would carry."""
    customer: NewCustomer = t.state["customer"]
    r = await t.http.post(
        f"/customers/{customer.id}/confirm", json={"token": customer.confirmation_token}
    )
    assert r.status_code == 200, r.text
    assert parse(Customer, r).confirmed


@suite.test
async def log_in(t: T) -> None:
    """Log in and read the customer's own profile with the session token."""
    customer: NewCustomer = t.state["customer"]
    r = await t.http.post(
        "/sessions", json={"email": customer.email, "password": t.state["password"]}
    )
    assert r.status_code == 201, r.text
    session = parse(Session, r)
    assert session.customer_id == customer.id
    r = await t.http.get(
        f"/customers/{customer.id}", headers={"Authorization": f"Bearer {session.token}"}
    )
    assert r.status_code == 200, r.text
    assert parse(Customer, r).email == customer.email
