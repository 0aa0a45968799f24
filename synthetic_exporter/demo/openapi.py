"""The demo API's OpenAPI 3.1 document (``GET /openapi.json``).

Schemas come from the pydantic models in :mod:`synthetic_exporter.demo.schemas`; paths are
listed here by hand. ``scripts/generate-demo-client.sh`` turns this document into the typed
client that the ``payments`` example suite uses (:mod:`synthetic_exporter.demo.client`).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from synthetic_exporter.core.version import __version__
from synthetic_exporter.demo import schemas as s

Json = dict[str, Any]
REF = "#/components/schemas/{model}"
TITLE = "Synthetic Widgets demo API"

REQUESTS: tuple[type[BaseModel], ...] = (
    s.SignUp,
    s.Confirm,
    s.Login,
    s.NewInvoice,
    s.Card,
    s.ChallengeAnswer,
    s.NewFault,
)
RESPONSES: tuple[type[BaseModel], ...] = (
    s.Error,
    s.Customer,
    s.NewCustomer,
    s.CustomerList,
    s.Session,
    s.Invoice,
    s.InvoiceList,
    s.Payment,
    s.Challenge,
    s.Health,
)

ERRORS = {
    400: "Bad request",
    401: "Missing or invalid bearer token",
    402: "Card declined",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict with the resource's state",
    422: "Invalid request body (one message per field)",
}
CDN_HEADERS = {
    "X-Cache": "Hit, RefreshHit, Miss or Error from cloudfront",
    "X-Amz-Cf-Pop": "The edge location (POP) that served the request, e.g. LHR61-P1",
    "X-Amz-Cf-Id": "CloudFront's id of the request",
    "Via": "1.1 <host>.cloudfront.net (CloudFront)",
    "Age": "Seconds since the edge fetched or revalidated its copy (cached answers only)",
    "ETag": "The object's ETag, as the origin sends it",
}
ORIGIN_HEADERS = {
    "x-amz-request-id": "S3's id of the request",
    "ETag": "Quoted MD5 of the object",
    "Last-Modified": "When the object was stored",
    "Server": "AmazonS3",
}


def _ref(model: type[BaseModel]) -> Json:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _binary(media_type: str, description: str, headers: dict[str, str] | None = None) -> Json:
    answer: Json = {
        "description": description,
        "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
    }
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return answer


def _path_param(name: str, description: str) -> Json:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: tuple[int, Json],
    *,
    errors: tuple[int, ...] = (),
    body: type[BaseModel] | None = None,
    params: tuple[Json, ...] = (),
    secured: bool = False,
) -> Json:
    status, answer = ok
    responses: Json = {str(status): answer}
    for code in errors:
        responses[str(code)] = _json(s.Error, ERRORS[code])
    operation: Json = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if secured:
        operation["security"] = [{"bearerAuth": []}]
    return operation


NO_CONTENT = (204, {"description": "Done"})
ID = {
    "customer": _path_param("id", "Customer id (cus_...)"),
    "invoice": _path_param("id", "Invoice id (inv_...)"),
    "payment": _path_param("id", "Payment id (pay_...)"),
    "challenge": _path_param("id", "Challenge id (chl_...)"),
    "fault": _path_param("id", "Fault id (flt_...)"),
    "key": _path_param("key", "Object key, e.g. assets/logo.svg"),
}
Method = Literal["get", "post", "delete"]
DELAY_MS = {
    "name": "ms",
    "in": "path",
    "required": True,
    "description": "How long to wait before answering, in milliseconds",
    "schema": {"type": "integer", "minimum": 0, "maximum": s.MAX_DELAY_MS},
}
DELAYED = {
    "schema": {
        "type": "object",
        "properties": {"delayed_ms": {"type": "integer"}},
        "required": ["delayed_ms"],
        "title": "Delayed",
    }
}


def _paths() -> dict[str, dict[Method, Json]]:
    op = _operation
    return {
        "/customers": {
            "post": op(
                "create_customer",
                "Sign up a customer",
                "customers",
                (201, _json(s.NewCustomer, "The new customer, with its confirmation token")),
                errors=(409, 422),
                body=s.SignUp,
            ),
            "get": op(
                "list_synthetic_customers",
                "Every synthetic customer, oldest first, for clean-up sweeps (needs"
                " X-Synthetic-Test)",
                "customers",
                (200, _json(s.CustomerList, "The synthetic customers")),
                errors=(403,),
            ),
        },
        "/customers/{id}": {
            "get": op(
                "get_customer",
                "The session's own customer",
                "customers",
                (200, _json(s.Customer, "The customer")),
                errors=(401, 404),
                params=(ID["customer"],),
                secured=True,
            ),
            "delete": op(
                "delete_customer",
                "Delete a synthetic customer and all it owns (needs X-Synthetic-Test)",
                "customers",
                NO_CONTENT,
                errors=(403, 404),
                params=(ID["customer"],),
            ),
        },
        "/customers/{id}/confirm": {
            "post": op(
                "confirm_customer",
                "Confirm the e-mail address",
                "customers",
                (200, _json(s.Customer, "The confirmed customer")),
                errors=(400, 404, 422),
                body=s.Confirm,
                params=(ID["customer"],),
            )
        },
        "/sessions": {
            "post": op(
                "create_session",
                "Log in",
                "customers",
                (201, _json(s.Session, "A bearer token")),
                errors=(401, 403, 422),
                body=s.Login,
            )
        },
        "/invoices": {
            "post": op(
                "create_invoice",
                "Issue an invoice to the session's customer",
                "invoices",
                (201, _json(s.Invoice, "The open invoice")),
                errors=(401, 422),
                body=s.NewInvoice,
                secured=True,
            ),
            "get": op(
                "list_invoices",
                "The session customer's invoices, newest first",
                "invoices",
                (200, _json(s.InvoiceList, "The invoices")),
                errors=(401,),
                secured=True,
            ),
        },
        "/invoices/{id}": {
            "get": op(
                "get_invoice",
                "One of the session customer's invoices",
                "invoices",
                (200, _json(s.Invoice, "The invoice")),
                errors=(401, 404),
                params=(ID["invoice"],),
                secured=True,
            ),
            "delete": op(
                "delete_invoice",
                "Delete a synthetic invoice (needs X-Synthetic-Test)",
                "invoices",
                NO_CONTENT,
                errors=(403, 404),
                params=(ID["invoice"],),
            ),
        },
        "/invoices/{id}/pdf": {
            "get": op(
                "get_invoice_pdf",
                "The invoice as a PDF",
                "invoices",
                (200, _binary("application/pdf", "A one-page PDF")),
                errors=(401, 404),
                params=(ID["invoice"],),
                secured=True,
            )
        },
        "/invoices/{id}/void": {
            "post": op(
                "void_invoice",
                "Void an open invoice",
                "invoices",
                (200, _json(s.Invoice, "The void invoice")),
                errors=(401, 404, 409),
                params=(ID["invoice"],),
                secured=True,
            )
        },
        "/invoices/{id}/payments": {
            "post": op(
                "create_payment",
                "Pay an open invoice by card; the payment then needs its challenge answered",
                "payments",
                (201, _json(s.Payment, "A payment that requires its challenge")),
                errors=(401, 402, 404, 409, 422),
                body=s.Card,
                params=(ID["invoice"],),
                secured=True,
            )
        },
        "/challenges/{id}": {
            "get": op(
                "get_challenge",
                "The challenge page of a payment",
                "payments",
                (200, _json(s.Challenge, "The challenge")),
                errors=(404,),
                params=(ID["challenge"],),
            ),
            "post": op(
                "answer_challenge",
                "Answer the challenge; the payment succeeds and the invoice is paid",
                "payments",
                (200, _json(s.Payment, "The succeeded payment")),
                errors=(400, 404, 409, 422),
                body=s.ChallengeAnswer,
                params=(ID["challenge"],),
            ),
        },
        "/payments/{id}/refund": {
            "post": op(
                "refund_payment",
                "Refund a succeeded payment",
                "payments",
                (200, _json(s.Payment, "The refunded payment")),
                errors=(401, 404, 409),
                params=(ID["payment"],),
                secured=True,
            )
        },
        "/cdn/{key}": {
            "get": op(
                "get_cdn_object",
                "An object through the CloudFront-like edge cache",
                "cdn",
                (200, _binary("application/octet-stream", "The object", CDN_HEADERS)),
                params=(ID["key"],),
            )
        },
        "/origin/{key}": {
            "get": op(
                "get_origin_object",
                "An object straight from the S3-like origin",
                "cdn",
                (200, _binary("application/octet-stream", "The object", ORIGIN_HEADERS)),
                params=(ID["key"],),
            )
        },
        "/health": {
            "get": op("health", "Liveness", "plumbing", (200, _json(s.Health, "Alive"))),
        },
        "/delay/{ms}": {
            "get": op(
                "delay",
                f"Answer after ms milliseconds (at most {s.MAX_DELAY_MS}), for timeout checks",
                "plumbing",
                (200, {"description": "Answered late", "content": {"application/json": DELAYED}}),
                errors=(422,),
                params=(DELAY_MS,),
            ),
        },
        "/admin/faults": {
            "post": op(
                "add_fault",
                "Inject a fault into requests whose path starts with a prefix",
                "admin",
                (201, {"description": "The fault"}),
                errors=(422,),
                body=s.NewFault,
            ),
            "delete": op("clear_faults", "Remove every fault", "admin", NO_CONTENT),
        },
        "/admin/faults/{id}": {
            "delete": op(
                "remove_fault",
                "Remove one fault",
                "admin",
                NO_CONTENT,
                errors=(404,),
                params=(ID["fault"],),
            )
        },
    }


def _schemas() -> Json:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((m, "validation") for m in REQUESTS),
        *((m, "serialization") for m in RESPONSES),
    ]
    _, top = models_json_schema(models, ref_template=REF)
    schemas: Json = top["$defs"]
    return dict(sorted(schemas.items()))


def build_openapi() -> Json:
    """Return the OpenAPI 3.1 document of the demo API (a fresh dict)."""
    document: Json = json.loads(openapi_json())
    return document


@cache
def openapi_json() -> bytes:
    """Return the OpenAPI document as indented JSON bytes (built once per process)."""
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": __version__,
            "description": (
                "The demo target of synthetic-exporter: customers, invoices, payments with a"
                " 3-D Secure-style challenge, a CloudFront-like CDN in front of an S3-like"
                " origin, and fault injection. Requests carrying X-Synthetic-Test create"
                " synthetic data, which only such requests may delete."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": name}
            for name in ("customers", "invoices", "payments", "cdn", "plumbing", "admin")
        ],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token of POST /sessions",
                }
            },
        },
    }
    return json.dumps(document, indent=2, sort_keys=False).encode() + b"\n"
