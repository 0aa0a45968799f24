"""What the example suites expect of the demo API's answers, as pydantic models.

``parse(Model, response)`` validates a JSON body and ``parse_headers(Model, response)`` the
headers; a response that does not look right fails the test with every field error::

    AssertionError: POST http://.../customers answered 201 with an unexpected body:
      id: String should match pattern '^cus_'; created_at: Field required

Files whose names start with ``_`` are not loaded as check files; the checks directory is on
``sys.path``, so suites import this module as ``from _models import ...``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

M = TypeVar("M", bound=BaseModel)

Currency = Literal["GBP", "EUR", "USD"]
CacheStatus = Literal[
    "Hit from cloudfront",
    "RefreshHit from cloudfront",
    "Miss from cloudfront",
    "Error from cloudfront",
]


class Expected(BaseModel):
    """A lenient view of an answer: extra fields are fine, missing or wrong ones are not."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Customer(Expected):
    id: str = Field(pattern=r"^cus_\w+$")
    email: str
    name: str
    confirmed: bool
    created_at: datetime


class NewCustomer(Customer):
    confirmation_token: str = Field(min_length=16)


class CustomerList(Expected):
    items: list[Customer]


class Session(Expected):
    token: str = Field(min_length=16)
    customer_id: str


class Invoice(Expected):
    id: str = Field(pattern=r"^inv_\w+$")
    customer_id: str
    amount_pence: int = Field(gt=0)
    currency: Currency
    description: str
    status: Literal["open", "void", "paid", "refunded"]
    created_at: datetime


class InvoiceList(Expected):
    items: list[Invoice]


class OriginHeaders(Expected):
    """What S3 sends with an object."""

    etag: str = Field(pattern=r'^"[0-9a-f]{32}"$')
    last_modified: str = Field(alias="last-modified")
    request_id: str = Field(alias="x-amz-request-id", min_length=8)
    server: Literal["AmazonS3"]


class EdgeHeaders(Expected):
    """What CloudFront adds: cache status, POP, request id, Via."""

    x_cache: CacheStatus = Field(alias="x-cache")
    pop: str = Field(alias="x-amz-cf-pop", pattern=r"^[A-Z]{3}\d+-[A-Z0-9]+$")
    cf_id: str = Field(alias="x-amz-cf-id", min_length=20)
    via: str = Field(pattern=r"\.cloudfront\.net \(CloudFront\)$")
    etag: str | None = None
    age: int | None = None


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def parse(model: type[M], response: httpx.Response) -> M:
    """Validate a JSON body as ``model``, or fail with the field errors."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        request = response.request
        raise AssertionError(
            f"{request.method} {request.url} answered {response.status_code} with an"
            f" unexpected body:\n  {_describe(exc)}\n  body: {response.text[:500]}"
        ) from None


def parse_headers(model: type[M], response: httpx.Response) -> M:
    """Validate the response headers (lower-case names) as ``model``, or fail."""
    try:
        return model.model_validate(dict(response.headers))
    except ValidationError as exc:
        request = response.request
        raise AssertionError(
            f"{request.method} {request.url} answered {response.status_code} with unexpected"
            f" headers:\n  {_describe(exc)}"
        ) from None
