"""Sign-up: a new customer registers, confirms their e-mail and logs in.

Runs against the target named ``default`` (SYNTHETIC_TARGETS__DEFAULT__BASE_URL). The customer
is recorded in the cleanup ledger *before* it is created (``t.intend``, in ``_customers.py``),
with a key that its name carries: if the agent dies while the create is under way, the next
sweep finds it by that key and deletes it. Every answer is validated with the models in
``_models.py``: a missing or malformed field fails the test and names the field.
"""

from __future__ import annotations

from _customers import (
    confirm_address,
    delete_customer,
    find_synthetic_customers,
    open_session,
    sign_up,
)
from _models import Customer, NewCustomer, parse

from synthetic_exporter import Suite, T

suite = Suite("signup", timeout="30s", tags=["customers"])
suite.janitor("customer")(delete_customer)
suite.orphans("customer")(find_synthetic_customers)


@suite.test
async def create_customer(t: T) -> None:
    """Register with a unique e-mail address."""
    customer, password = await sign_up(t)
    assert not customer.confirmed
    t.state.update(customer=customer, password=password)


@suite.test
async def confirm_email(t: T) -> None:
    """Confirm the address with the token the confirmation e-mail would carry."""
    customer: NewCustomer = t.state["customer"]
    assert (await confirm_address(t, customer)).confirmed


@suite.test
async def log_in(t: T) -> None:
    """Log in and read the customer's own profile with the session token."""
    customer: NewCustomer = t.state["customer"]
    session = await open_session(t, customer.email, t.state["password"])
    assert session.customer_id == customer.id
    r = await t.http.get(
        f"/customers/{customer.id}", headers={"Authorization": f"Bearer {session.token}"}
    )
    assert r.status_code == 200, r.text
    assert parse(Customer, r).email == customer.email
