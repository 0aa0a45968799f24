"""Invoices: a confirmed customer is issued an invoice, lists it, downloads the PDF, voids it.

Depends on ``signup``: when signing up is broken, this suite is skipped with that reason
instead of failing too (one outage, one alert). It signs up its own customer so that each
suite's data stays its own. Answers are validated with the models in ``_models.py``.
"""

from __future__ import annotations

import uuid

import httpx
from _models import CustomerList, Invoice, InvoiceList, NewCustomer, Session, parse

from synthetic_exporter import JanitorContext, Orphan, Resource, Suite, T

suite = Suite("invoices", depends_on=["signup"], timeout="30s", tags=["billing"])


@suite.janitor("customer")
async def delete_customer(j: JanitorContext, customer: Resource) -> None:
    """Delete the test customer and, with it, its invoices."""
    r = await j.http.delete(f"/customers/{customer.id}")
    assert r.status_code in (204, 404), r.text


@suite.orphans("customer")
async def find_synthetic_customers(j: JanitorContext) -> list[Orphan]:
    """Every synthetic customer, with its creation time and its name (which carries the key)."""
    r = await j.http.get("/customers")
    assert r.status_code == 200, r.text
    return [Orphan(c.id, c.created_at, marker=c.name) for c in parse(CustomerList, r).items]


async def _signed_in_customer(t: T) -> httpx.Headers:
    """Create, confirm and log in a customer; return the auth headers."""
    key = t.intend("customer")
    email = f"synthetic+{uuid.uuid4().hex[:12]}@example.com"
    password = uuid.uuid4().hex
    r = await t.http.post(
        "/customers", json={"email": email, "name": f"Synthetic {key}", "password": password}
    )
    assert r.status_code == 201, r.text
    customer = parse(NewCustomer, r)
    t.track("customer", customer.id, key=key)
    r = await t.http.post(
        f"/customers/{customer.id}/confirm", json={"token": customer.confirmation_token}
    )
    assert r.status_code == 200, r.text
    r = await t.http.post("/sessions", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return httpx.Headers({"Authorization": f"Bearer {parse(Session, r).token}"})


@suite.test
async def issue_invoice(t: T) -> None:
    """Issue an invoice for £12.00."""
    auth = await _signed_in_customer(t)
    t.state["auth"] = auth
    r = await t.http.post(
        "/invoices",
        json={"amount_pence": 1200, "currency": "GBP", "description": "synthetic check"},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    invoice = parse(Invoice, r)
    assert (invoice.status, invoice.amount_pence, invoice.currency) == ("open", 1200, "GBP")
    t.state["invoice"] = invoice


@suite.test
async def list_invoices(t: T) -> None:
    """The new invoice is listed first."""
    r = await t.http.get("/invoices", headers=t.state["auth"])
    assert r.status_code == 200, r.text
    ids = [item.id for item in parse(InvoiceList, r).items]
    assert ids[:1] == [t.state["invoice"].id]


@suite.test
async def download_pdf(t: T) -> None:
    """The invoice downloads as a PDF."""
    invoice: Invoice = t.state["invoice"]
    r = await t.http.get(f"/invoices/{invoice.id}/pdf", headers=t.state["auth"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/pdf")
    assert r.content.startswith(b"%PDF-")


@suite.test
async def void_invoice(t: T) -> None:
    """Voiding the invoice marks it void."""
    invoice: Invoice = t.state["invoice"]
    r = await t.http.post(f"/invoices/{invoice.id}/void", headers=t.state["auth"])
    assert r.status_code == 200, r.text
    assert parse(Invoice, r).status == "void"
