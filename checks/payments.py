"""Payments: a customer pays an invoice by card, passes the 3-D Secure-style challenge, is refunded.

Depends on ``invoices`` (and so on ``signup``): when issuing invoices is broken, this suite is
skipped with that reason. It uses the typed client generated from the demo API's OpenAPI
document (``synthetic_exporter.demo.client``, see ``scripts/generate-demo-client.sh``): a changed
API shows up as a type error in review instead of a failing check in production. The typed calls
go through the target's instrumented client, so they are measured like ``t.http`` calls.

The card and challenge code are the demo's test values; against a real payment provider, use
its test card numbers and a sandbox merchant account.
"""

from __future__ import annotations

import contextlib
import uuid

from _customers import delete_customer
from _demo_api import (
    customer_client,
    expect,
    public_client,
    skip_without_typed_client,
    typed_client_missing,
)

from synthetic_exporter import JanitorContext, Orphan, Suite, T

# Generated from the demo's OpenAPI document; it needs the ``demo`` extra (attrs). The
# production image leaves it out: then every test here is skipped (``skip_without_typed_client``).
with contextlib.suppress(ImportError):
    from synthetic_exporter.demo.client import Client
    from synthetic_exporter.demo.client.api.customers import (
        confirm_customer,
        create_customer,
        create_session,
        list_synthetic_customers,
    )
    from synthetic_exporter.demo.client.api.invoices import create_invoice, get_invoice
    from synthetic_exporter.demo.client.api.payments import (
        answer_challenge,
        create_payment,
        get_challenge,
        refund_payment,
    )
    from synthetic_exporter.demo.client.models import (
        Card,
        Challenge,
        ChallengeAnswer,
        Confirm,
        Currency,
        Customer,
        CustomerList,
        Invoice,
        InvoiceStatus,
        Login,
        NewCustomer,
        NewInvoice,
        Payment,
        PaymentStatus,
        Session,
        SignUp,
    )

suite = Suite("payments", depends_on=["invoices"], timeout="30s", tags=["billing", "payments"])

TEST_CARD = {"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
CHALLENGE_CODE = "123456"  # the demo's 3-D Secure test code
AMOUNT_PENCE = 1999


suite.janitor("customer")(delete_customer)


@suite.orphans("customer")
async def find_synthetic_customers(j: JanitorContext) -> list[Orphan]:
    """Every synthetic customer, with its creation time and its name (which carries the key)."""
    if typed_client_missing():
        return []  # without the typed client this suite never ran, so it left nothing
    api = Client(base_url=str(j.http.base_url)).set_async_httpx_client(j.http)
    listed = expect(await list_synthetic_customers.asyncio_detailed(client=api), 200, CustomerList)
    return [Orphan(c.id, c.created_at, marker=c.name) for c in listed.items]


@suite.test
async def pay_by_card(t: T) -> None:
    """Sign up, get an invoice for £19.99 and pay it by card: the bank asks for a challenge."""
    skip_without_typed_client(t)
    api = public_client(t)
    email = f"synthetic+{uuid.uuid4().hex[:12]}@example.com"
    password = uuid.uuid4().hex
    async with t.step("sign up"):
        key = t.intend("customer")
        body = SignUp(email=email, name=f"Synthetic {key}", password=password)
        customer = expect(
            await create_customer.asyncio_detailed(client=api, body=body), 201, NewCustomer
        )
        t.track("customer", customer.id, key=key)
        confirm = Confirm(token=customer.confirmation_token)
        confirmed = await confirm_customer.asyncio_detailed(customer.id, client=api, body=confirm)
        assert expect(confirmed, 200, Customer).confirmed
        login = Login(email=email, password=password)
        session = expect(
            await create_session.asyncio_detailed(client=api, body=login), 201, Session
        )
    me = customer_client(t, session.token)
    async with t.step("invoice"):
        new = NewInvoice(amount_pence=AMOUNT_PENCE, currency=Currency.GBP, description="synthetic")
        invoice = expect(await create_invoice.asyncio_detailed(client=me, body=new), 201, Invoice)
    async with t.step("pay"):
        paid = await create_payment.asyncio_detailed(invoice.id, client=me, body=Card(**TEST_CARD))
        payment = expect(paid, 201, Payment)
    assert payment.status == PaymentStatus.REQUIRES_CHALLENGE
    assert payment.amount_pence == AMOUNT_PENCE
    t.state.update(me=me, invoice=invoice, payment=payment)


@suite.test
async def pass_challenge(t: T) -> None:
    """Open the challenge page, enter the code: the payment succeeds and the invoice is paid."""
    skip_without_typed_client(t)
    payment: Payment = t.state["payment"]
    api = public_client(t)
    page = await get_challenge.asyncio_detailed(payment.challenge.id, client=api)
    assert expect(page, 200, Challenge).payment_id == payment.id
    answer = ChallengeAnswer(code=CHALLENGE_CODE)
    done = await answer_challenge.asyncio_detailed(payment.challenge.id, client=api, body=answer)
    assert expect(done, 200, Payment).status == PaymentStatus.SUCCEEDED
    invoice = await get_invoice.asyncio_detailed(t.state["invoice"].id, client=t.state["me"])
    assert expect(invoice, 200, Invoice).status == InvoiceStatus.PAID


@suite.test
async def refund(t: T) -> None:
    """Refund the payment: it and the invoice are marked refunded."""
    skip_without_typed_client(t)
    payment: Payment = t.state["payment"]
    me = t.state["me"]
    refunded = await refund_payment.asyncio_detailed(payment.id, client=me)
    assert expect(refunded, 200, Payment).status == PaymentStatus.REFUNDED
    invoice = await get_invoice.asyncio_detailed(t.state["invoice"].id, client=me)
    assert expect(invoice, 200, Invoice).status == InvoiceStatus.REFUNDED
