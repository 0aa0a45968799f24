"""The demo API's test customers: signing one up, and cleaning them up.

Several suites need a customer of their own. Each registers these two functions for the kind
``customer`` (the janitor that deletes one, then the listing the sweep searches for what a
crash left behind) and calls :func:`sign_up` or :func:`signed_in_customer` in a test::

    suite.janitor("customer")(delete_customer)
    suite.orphans("customer")(find_synthetic_customers)

A customer is recorded in the cleanup ledger *before* it is created (``t.intend``), with a key
that its name carries: if the agent dies while the create is under way, the next sweep finds it
by that key and deletes it. Deleting a customer deletes its invoices, payments and sessions.
"""

from __future__ import annotations

import uuid

from _models import Customer, CustomerList, NewCustomer, Session, parse

from synthetic_exporter import JanitorContext, Orphan, Resource, T


async def delete_customer(j: JanitorContext, customer: Resource) -> None:
    """Delete a test customer and all it owns (already gone counts as deleted)."""
    r = await j.http.delete(f"/customers/{customer.id}")
    assert r.status_code in (204, 404), r.text


async def find_synthetic_customers(j: JanitorContext) -> list[Orphan]:
    """Every synthetic customer, with its creation time and its name (which carries the key)."""
    r = await j.http.get("/customers")
    assert r.status_code == 200, r.text
    return [Orphan(c.id, c.created_at, marker=c.name) for c in parse(CustomerList, r).items]


async def sign_up(t: T) -> tuple[NewCustomer, str]:
    """Register a customer with a unique e-mail address; return it and its password."""
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
    return customer, password


async def confirm_address(t: T, customer: NewCustomer) -> Customer:
    """Confirm the address with the token the confirmation e-mail would carry."""
    r = await t.http.post(
        f"/customers/{customer.id}/confirm", json={"token": customer.confirmation_token}
    )
    assert r.status_code == 200, r.text
    return parse(Customer, r)


async def open_session(t: T, email: str, password: str) -> Session:
    """Open a session; return it (its token goes in ``Authorization: Bearer``)."""
    r = await t.http.post("/sessions", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return parse(Session, r)


async def signed_in_customer(t: T) -> tuple[NewCustomer, Session]:
    """Sign up, confirm and log in a new customer; return it and its session."""
    customer, password = await sign_up(t)
    await confirm_address(t, customer)
    return customer, await open_session(t, customer.email, password)
