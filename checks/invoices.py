"""Invoices: a confirmed customer is issued an invoice, lists it, downloads the PDF, voids it.

Depends on ``signup``: when signing up is broken, this suite is skipped with that reason
instead of failing too (one outage, one alert). It signs up its own customer so that each
suite's data stays its own. Answers are validated with the models in ``_models.py``.
"""

from __future__ import annotations

import httpx
from _customers import delete_customer, find_synthetic_customers, signed_in_customer
from _models import Invoice, InvoiceList, parse

from synthetic_exporter import Suite, T

suite = Suite("invoices", depends_on=["signup"], timeout="30s", tags=["billing"])
suite.janitor("customer")(delete_customer)
suite.orphans("customer")(find_synthetic_customers)


@suite.test
async def issue_invoice(t: T) -> None:
    """Issue an invoice for £12.00."""
    _, session = await signed_in_customer(t)
    auth = httpx.Headers({"Authorization": f"Bearer {session.token}"})
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
