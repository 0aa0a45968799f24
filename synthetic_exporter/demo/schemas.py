"""The demo API's request and response bodies, as pydantic models.

Request models validate what clients send; response models document what the handlers answer
and feed the OpenAPI document (``GET /openapi.json``). The tests check that real responses
validate against the response models, so the document cannot drift from the handlers.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_DELAY_MS = 60_000


class Currency(StrEnum):
    """ISO 4217 code."""

    GBP = "GBP"
    EUR = "EUR"
    USD = "USD"


class InvoiceStatus(StrEnum):
    """open, then void, or paid and maybe refunded."""

    OPEN = "open"
    VOID = "void"
    PAID = "paid"
    REFUNDED = "refunded"


class PaymentStatus(StrEnum):
    """requires_challenge until the challenge is answered, then succeeded; maybe refunded."""

    REQUIRES_CHALLENGE = "requires_challenge"
    SUCCEEDED = "succeeded"
    REFUNDED = "refunded"


class _Body(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


# --- requests -------------------------------------------------------------------------------


class SignUp(_Body):
    """A new customer's details."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)
    """Unique, ignoring case."""
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8, max_length=200)


class Confirm(_Body):
    """The token of the confirmation e-mail."""

    token: str


class Login(_Body):
    """A confirmed customer's credentials."""

    email: str
    password: str


class NewInvoice(_Body):
    """What to bill."""

    amount_pence: int = Field(gt=0, strict=True)
    """Amount in the currency's minor unit."""
    currency: Currency
    description: str = Field(max_length=500)


class Card(_Body):
    """Card details. 4000000000000002 is always declined."""

    card_number: str = Field(pattern=r"^\d{12,19}$")
    expiry: str = Field(pattern=r"^(0[1-9]|1[0-2])/\d{2}$")
    """MM/YY."""
    cvc: str = Field(pattern=r"^\d{3,4}$")


class ChallengeAnswer(_Body):
    """The one-time code of a 3-D Secure-style challenge."""

    code: str


class NewFault(_Body):
    """A fault to inject into matching requests."""

    path: str = Field(pattern=r"^/")
    """Path prefix, e.g. /invoices or /cdn."""
    method: str | None = None
    """Only this method; any when unset."""
    status: int | None = Field(default=None, ge=200, le=599)
    """Answer with this status instead of calling the handler."""
    delay_ms: int = Field(default=0, ge=0, le=MAX_DELAY_MS)
    """Delay before the request is handled (nothing has changed yet)."""
    delay_after_ms: int = Field(default=0, ge=0, le=MAX_DELAY_MS)
    """Delay the answer after the request was handled (a create has happened, the client waits)."""


# --- responses ------------------------------------------------------------------------------


class Error(_Body):
    """Any error: a message, plus one message per invalid field for 422."""

    error: str
    fields: dict[str, str] | None = None


class Customer(_Body):
    """A customer."""

    id: str
    email: str
    name: str
    confirmed: bool
    synthetic: bool
    """Created by a request carrying the X-Synthetic-Test header."""
    created_at: datetime


class NewCustomer(Customer):
    """A customer just signed up, with the token its confirmation e-mail carries."""

    confirmation_token: str


class CustomerList(_Body):
    """Synthetic customers, oldest first."""

    items: list[Customer]


class Session(_Body):
    """A bearer token for the customer's requests."""

    token: str
    customer_id: str


class Invoice(_Body):
    """An invoice."""

    id: str
    customer_id: str
    amount_pence: int
    currency: Currency
    description: str
    status: InvoiceStatus
    synthetic: bool
    created_at: datetime


class InvoiceList(_Body):
    """The session customer's invoices, newest first."""

    items: list[Invoice]


class ChallengeLink(_Body):
    """Where to answer the payment's challenge."""

    id: str
    url: str


class Payment(_Body):
    """A card payment of an invoice."""

    id: str
    invoice_id: str
    amount_pence: int
    status: PaymentStatus
    challenge: ChallengeLink


class Challenge(_Body):
    """A 3-D Secure-style challenge page."""

    id: str
    payment_id: str
    hint: str


class Health(_Body):
    """Liveness."""

    status: Literal["ok"]
