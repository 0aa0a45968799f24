"""The demo customer API: sign-up, sessions, invoices, payments with a challenge, and faults.

All state lives in memory on one :class:`DemoState` per app. Handlers never await between
reading and changing state, so one asyncio process needs no locks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from synthetic_exporter.demo.edge import DEFAULT_POPS, DEFAULT_TTL_SECONDS, ObjectEdge, seed_objects
from synthetic_exporter.demo.openapi import openapi_json
from synthetic_exporter.demo.pdf import one_page_pdf, pdf_text
from synthetic_exporter.demo.schemas import (
    MAX_DELAY_MS,
    Card,
    ChallengeAnswer,
    Confirm,
    Login,
    NewFault,
    NewInvoice,
    SignUp,
)

MARKER_HEADER = "x-synthetic-test"
CDN_PREFIX = "/cdn/"
DECLINED_CARD = "4000000000000002"
CHALLENGE_CODE = "123456"

Json = dict[str, Any]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class ApiError(Exception):
    """An error answered as ``{"error": message}`` (plus ``fields`` for 422)."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields


# --- state ----------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """Return a random identifier such as ``cus_3f2a...``."""
    return f"{prefix}_{secrets.token_hex(8)}"


def now_iso() -> str:
    """Return the current time as ISO-8601 UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def hash_password(password: str, salt: str | None = None) -> str:
    """Return a salted ``salt$hash`` of ``password`` (a demo, not a password store).

    Pass a stored hash as ``salt`` to hash with its salt, to verify a password against it.
    """
    salt = (salt or secrets.token_hex(8)).split("$")[0]
    return f"{salt}${hashlib.sha256(f'{salt}:{password}'.encode()).hexdigest()}"


@dataclass(kw_only=True)
class Customer:
    """A customer; ``synthetic`` when a request carrying the marker header signed it up."""

    id: str = field(default_factory=lambda: new_id("cus"))
    email: str
    name: str
    confirmed: bool = False
    confirmation_token: str = field(default_factory=lambda: secrets.token_hex(16))
    synthetic: bool
    created_at: str = field(default_factory=now_iso)
    password_hash: str  # "salt$sha256"

    def to_json(self, *, with_token: bool = False) -> Json:
        """Return the JSON form: never the password hash; the confirmation token if asked."""
        hidden = {"password_hash"} | (set() if with_token else {"confirmation_token"})
        return {k: v for k, v in asdict(self).items() if k not in hidden}


@dataclass(kw_only=True)
class Invoice:
    """An invoice of one customer: ``open``, then ``paid``, ``void`` or ``refunded``."""

    id: str = field(default_factory=lambda: new_id("inv"))
    customer_id: str
    amount_pence: int
    currency: str
    description: str
    status: str = "open"
    synthetic: bool
    created_at: str = field(default_factory=now_iso)

    def to_json(self) -> Json:
        """Return the JSON form."""
        return asdict(self)


@dataclass(kw_only=True)
class Payment:
    """A card payment of an invoice; it succeeds once its challenge is answered."""

    id: str = field(default_factory=lambda: new_id("pay"))
    invoice_id: str
    customer_id: str
    amount_pence: int
    status: str = "requires_challenge"
    challenge_id: str = field(default_factory=lambda: new_id("chl"))

    def to_json(self) -> Json:
        """Return the JSON form, with the challenge's id and URL."""
        data = {k: v for k, v in asdict(self).items() if k not in ("customer_id", "challenge_id")}
        url = f"/challenges/{self.challenge_id}"
        return data | {"challenge": {"id": self.challenge_id, "url": url}}


@dataclass(kw_only=True)
class Fault:
    """An injected fault: a delay, a status or both, for requests under ``path``."""

    id: str = field(default_factory=lambda: new_id("flt"))
    path: str
    method: str | None
    status: int | None
    delay_ms: int
    delay_after_ms: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is affected: path prefix and, when set, the method."""
        return path.startswith(self.path) and self.method in (None, method)

    def to_json(self) -> Json:
        """Return the JSON form."""
        return asdict(self)


@dataclass(kw_only=True)
class DemoState:
    """Everything the demo API knows; one per app."""

    customers: dict[str, Customer] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    challenges: dict[str, str] = field(default_factory=dict)  # challenge id -> payment id
    sessions: dict[str, str] = field(default_factory=dict)  # token -> customer id
    faults: dict[str, Fault] = field(default_factory=dict)
    synthetic_customers_created: int = 0
    edge: ObjectEdge = field(init=False)
    """The CDN edge and its S3-like origin (``/cdn``, ``/origin``)."""

    def __post_init__(self) -> None:
        self.edge = ObjectEdge(find_fault=self.find_fault)

    def find_fault(self, method: str, path: str) -> Fault | None:
        """Return the first fault, in insertion order, that matches a request."""
        return next((f for f in self.faults.values() if f.matches(method, path)), None)

    def customer_by_email(self, email: str) -> Customer | None:
        """Emails are unique, ignoring case."""
        wanted = email.casefold()
        return next((c for c in self.customers.values() if c.email.casefold() == wanted), None)

    def stats(self) -> dict[str, int]:
        """How much data there is, and how much of it is synthetic."""
        return {
            "customers": len(self.customers),
            "invoices": len(self.invoices),
            "payments": len(self.payments),
            "synthetic_customers": sum(c.synthetic for c in self.customers.values()),
            "synthetic_invoices": sum(i.synthetic for i in self.invoices.values()),
            "synthetic_customers_created": self.synthetic_customers_created,
        }

    def drop_invoice(self, invoice: Invoice) -> None:
        """Delete an invoice with its payments and challenges."""
        for payment in [p for p in self.payments.values() if p.invoice_id == invoice.id]:
            self.challenges.pop(payment.challenge_id, None)
            del self.payments[payment.id]
        del self.invoices[invoice.id]

    def drop_customer(self, customer: Customer) -> None:
        """Delete a customer with everything they own."""
        for invoice in [i for i in self.invoices.values() if i.customer_id == customer.id]:
            self.drop_invoice(invoice)
        for token in [t for t, cid in self.sessions.items() if cid == customer.id]:
            del self.sessions[token]
        del self.customers[customer.id]


# --- helpers --------------------------------------------------------------------------------


def is_synthetic(request: Request) -> bool:
    """Whether the request carries the synthetic-test marker header."""
    return bool(request.headers.get(MARKER_HEADER, "").strip())


def require_deletable(request: Request, resource_synthetic: bool) -> None:
    """Only marked requests may delete, and only synthetic data."""
    if not (is_synthetic(request) and resource_synthetic):
        raise ApiError(403, "only synthetic test data can be deleted")


async def parse(request: Request, model: type[M]) -> M:
    """Validate a JSON body, or raise a 422 with one message per field."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        fields = {".".join(map(str, e["loc"])) or "body": e["msg"] for e in exc.errors()}
        raise ApiError(422, "invalid request body", fields) from None


def found(item: T | None, what: str) -> T:
    """Return the item, or raise a 404."""
    if item is None:
        raise ApiError(404, f"{what} not found")
    return item


def empty(status: int = 204) -> Response:
    """Return a response without a body."""
    return Response(status_code=status)


def render_pdf(invoice: Invoice) -> bytes:
    """Return a tiny one-page PDF naming the invoice."""
    text = pdf_text(f"Invoice {invoice.id}: {invoice.amount_pence / 100:.2f} {invoice.currency}")
    return one_page_pdf(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET")


async def sleep_while_connected(seconds: float, receive: Receive) -> tuple[bool, Receive]:
    """Sleep, but stop early if the client disconnects (so shutdowns need not wait).

    Returns whether the client is still there, and a ``receive`` that replays what was read.
    """
    read: list[Message] = []
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while not read or read[-1]["type"] != "http.disconnect":
                read.append(await receive())
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        await anyio.sleep(seconds)
        tg.cancel_scope.cancel()

    async def replay() -> Message:
        return read.pop(0) if read else await receive()

    return not (read and read[-1]["type"] == "http.disconnect"), replay


# --- fault injection ------------------------------------------------------------------------


def _delayed(send: Send, seconds: float) -> Send:
    """Wrap ``send`` to wait ``seconds`` before the response starts."""

    async def send_later(message: Message) -> None:
        if message["type"] == "http.response.start":
            await anyio.sleep(seconds)
        await send(message)

    return send_later


class FaultInjector:
    """ASGI middleware: delays or fails requests that match a fault; never ``/admin``.

    ``delay_ms`` waits before the handler runs; ``delay_after_ms`` runs the handler, then holds
    its answer back (a slow create: the customer exists while the client still waits).
    """

    def __init__(self, app: ASGIApp, state: DemoState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Apply the first matching fault to the request, or pass it on untouched."""
        path = str(scope.get("path", ""))
        fault = None
        if scope["type"] == "http" and not path.startswith("/admin"):
            fault = self.state.find_fault(str(scope["method"]).upper(), path)
        if fault is not None and fault.delay_ms:
            connected, receive = await sleep_while_connected(fault.delay_ms / 1000, receive)
            if not connected:
                return
        if fault is None or fault.status is None:
            after = fault.delay_after_ms / 1000 if fault is not None else 0
            await self.app(scope, receive, _delayed(send, after) if after else send)
            return
        response: Response = JSONResponse({"error": "injected fault"}, fault.status)
        if fault.status in (204, 304):
            response = empty(fault.status)
        if path.startswith(CDN_PREFIX):  # the edge itself failing still says so, as CloudFront
            key = path.removeprefix(CDN_PREFIX)
            response.headers.update(self.state.edge.edge_headers(key, "Error"))
        await response(scope, receive, send)


# --- handlers -------------------------------------------------------------------------------


class DemoApi:
    """The request handlers, bound to one :class:`DemoState`."""

    def __init__(self, state: DemoState) -> None:
        self.state = state

    def session_customer(self, request: Request) -> Customer:
        """Return the customer behind the bearer token, or raise a 401."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        customer_id = self.state.sessions.get(token.strip()) if scheme.lower() == "bearer" else None
        if customer_id is None:
            raise ApiError(401, "missing or invalid bearer token")
        return self.state.customers[customer_id]

    def own_invoice(self, request: Request) -> Invoice:
        """Return the invoice in the path if the session's customer owns it; else raise a 404."""
        customer = self.session_customer(request)
        invoice = self.state.invoices.get(str(request.path_params["id"]))
        if invoice is None or invoice.customer_id != customer.id:
            raise ApiError(404, "invoice not found")
        return invoice

    # customers and sessions

    async def create_customer(self, request: Request) -> Response:
        """``POST /customers``: sign up; 201 with the confirmation token (synthetic if marked)."""
        body = await parse(request, SignUp)
        if self.state.customer_by_email(body.email) is not None:
            raise ApiError(409, "a customer with this email already exists")
        customer = Customer(
            email=body.email,
            name=body.name,
            password_hash=hash_password(body.password),
            synthetic=is_synthetic(request),
        )
        self.state.customers[customer.id] = customer
        self.state.synthetic_customers_created += customer.synthetic
        return JSONResponse(customer.to_json(with_token=True), 201)

    async def list_synthetic_customers(self, request: Request) -> Response:
        """``GET /customers``: the synthetic customers, to marked requests only."""
        if not is_synthetic(request):
            raise ApiError(403, "only requests carrying X-Synthetic-Test may list customers")
        mine = [c.to_json() for c in self.state.customers.values() if c.synthetic]
        return JSONResponse({"items": mine})

    async def confirm_customer(self, request: Request) -> Response:
        """``POST /customers/{id}/confirm``: confirm with the token given at sign-up."""
        customer = found(self.state.customers.get(request.path_params["id"]), "customer")
        body = await parse(request, Confirm)
        if not hmac.compare_digest(body.token, customer.confirmation_token):
            raise ApiError(400, "invalid confirmation token")
        customer.confirmed = True
        return JSONResponse(customer.to_json())

    async def create_session(self, request: Request) -> Response:
        """``POST /sessions``: log a confirmed customer in; 201 with a bearer token."""
        body = await parse(request, Login)
        customer = self.state.customer_by_email(body.email)
        given = hash_password(body.password, customer.password_hash) if customer else ""
        if customer is None or not hmac.compare_digest(given, customer.password_hash):
            raise ApiError(401, "invalid email or password")
        if not customer.confirmed:
            raise ApiError(403, "customer not confirmed")
        token = secrets.token_hex(16)
        self.state.sessions[token] = customer.id
        return JSONResponse({"token": token, "customer_id": customer.id}, 201)

    async def get_customer(self, request: Request) -> Response:
        """``GET /customers/{id}``: the session's own customer (any other is a 404)."""
        customer = self.session_customer(request)
        if request.path_params["id"] != customer.id:
            raise ApiError(404, "customer not found")
        return JSONResponse(customer.to_json())

    async def delete_customer(self, request: Request) -> Response:
        """``DELETE /customers/{id}``: a synthetic customer and all it owns (marked requests)."""
        customer = found(self.state.customers.get(request.path_params["id"]), "customer")
        require_deletable(request, customer.synthetic)
        self.state.drop_customer(customer)
        return empty()

    # invoices

    async def create_invoice(self, request: Request) -> Response:
        """``POST /invoices``: an open invoice of the session's customer."""
        customer = self.session_customer(request)
        body = await parse(request, NewInvoice)
        invoice = Invoice(
            customer_id=customer.id, synthetic=is_synthetic(request), **body.model_dump(mode="json")
        )
        self.state.invoices[invoice.id] = invoice
        return JSONResponse(invoice.to_json(), 201)

    async def list_invoices(self, request: Request) -> Response:
        """``GET /invoices``: the session customer's invoices, newest first."""
        customer = self.session_customer(request)
        mine = [i.to_json() for i in self.state.invoices.values() if i.customer_id == customer.id]
        return JSONResponse({"items": mine[::-1]})

    async def get_invoice(self, request: Request) -> Response:
        """``GET /invoices/{id}``: an invoice of the session's customer."""
        return JSONResponse(self.own_invoice(request).to_json())

    async def invoice_pdf(self, request: Request) -> Response:
        """``GET /invoices/{id}/pdf``: the invoice as a one-page PDF."""
        invoice = self.own_invoice(request)
        disposition = f'inline; filename="{invoice.id}.pdf"'
        headers = {"content-disposition": disposition}
        return Response(render_pdf(invoice), media_type="application/pdf", headers=headers)

    async def void_invoice(self, request: Request) -> Response:
        """``POST /invoices/{id}/void``: void an invoice that is neither paid nor refunded."""
        invoice = self.own_invoice(request)
        if invoice.status in ("paid", "refunded"):
            raise ApiError(409, f"a {invoice.status} invoice cannot be voided")
        invoice.status = "void"
        return JSONResponse(invoice.to_json())

    async def delete_invoice(self, request: Request) -> Response:
        """``DELETE /invoices/{id}``: a synthetic invoice and its payments (marked requests)."""
        invoice = found(self.state.invoices.get(request.path_params["id"]), "invoice")
        require_deletable(request, invoice.synthetic)
        self.state.drop_invoice(invoice)
        return empty()

    # payments

    async def create_payment(self, request: Request) -> Response:
        """``POST /invoices/{id}/payments``: pay an open invoice by card; it awaits a challenge."""
        invoice = self.own_invoice(request)
        card = await parse(request, Card)
        if invoice.status != "open":
            raise ApiError(409, f"invoice is {invoice.status}, not open")
        if card.card_number == DECLINED_CARD:
            raise ApiError(402, "card declined")
        payment = Payment(
            invoice_id=invoice.id,
            customer_id=invoice.customer_id,
            amount_pence=invoice.amount_pence,
        )
        self.state.payments[payment.id] = payment
        self.state.challenges[payment.challenge_id] = payment.id
        return JSONResponse(payment.to_json(), 201)

    def challenged_payment(self, request: Request) -> Payment:
        """Return the payment of the challenge in the path, or raise a 404."""
        payment_id = found(self.state.challenges.get(request.path_params["id"]), "challenge")
        return self.state.payments[payment_id]

    async def get_challenge(self, request: Request) -> Response:
        """``GET /challenges/{id}``: the challenge, with a hint that gives the code."""
        payment = self.challenged_payment(request)
        hint = f"enter the code {CHALLENGE_CODE}"
        return JSONResponse({"id": payment.challenge_id, "payment_id": payment.id, "hint": hint})

    async def answer_challenge(self, request: Request) -> Response:
        """``POST /challenges/{id}``: the right code makes the payment succeed, the invoice paid."""
        payment = self.challenged_payment(request)
        answer = await parse(request, ChallengeAnswer)
        invoice = self.state.invoices[payment.invoice_id]
        if payment.status != "requires_challenge" or invoice.status != "open":
            raise ApiError(409, "this challenge is no longer open")
        if not hmac.compare_digest(answer.code, CHALLENGE_CODE):
            raise ApiError(400, "wrong challenge code")
        payment.status, invoice.status = "succeeded", "paid"
        return JSONResponse(payment.to_json())

    async def refund_payment(self, request: Request) -> Response:
        """``POST /payments/{id}/refund``: refund a succeeded payment, and so its invoice."""
        customer = self.session_customer(request)
        payment = self.state.payments.get(request.path_params["id"])
        if payment is None or payment.customer_id != customer.id:
            raise ApiError(404, "payment not found")
        if payment.status != "succeeded":
            raise ApiError(409, "only succeeded payments can be refunded")
        payment.status = "refunded"
        self.state.invoices[payment.invoice_id].status = "refunded"
        return JSONResponse(payment.to_json())

    # plumbing

    async def health(self, request: Request) -> Response:
        """``GET /health``: always ok."""
        return JSONResponse({"status": "ok"})

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``: the OpenAPI document."""
        return Response(openapi_json(), media_type="application/json")

    async def delay(self, request: Request) -> Response:
        """``GET /delay/{ms}``: answer after ``ms`` milliseconds (at most ``MAX_DELAY_MS``)."""
        ms: int = request.path_params["ms"]
        if ms > MAX_DELAY_MS:
            raise ApiError(422, f"delay is capped at {MAX_DELAY_MS} ms", {"ms": "too large"})
        await sleep_while_connected(ms / 1000, request.receive)
        return JSONResponse({"delayed_ms": ms})

    # admin

    async def add_fault(self, request: Request) -> Response:
        """``POST /admin/faults``: inject a fault."""
        body = await parse(request, NewFault)
        method = body.method.upper() if body.method else None
        fault = Fault(
            path=body.path,
            method=method,
            status=body.status,
            delay_ms=body.delay_ms,
            delay_after_ms=body.delay_after_ms,
        )
        self.state.faults[fault.id] = fault
        return JSONResponse(fault.to_json(), 201)

    async def list_faults(self, request: Request) -> Response:
        """``GET /admin/faults``: the injected faults, in insertion order."""
        return JSONResponse({"items": [f.to_json() for f in self.state.faults.values()]})

    async def remove_fault(self, request: Request) -> Response:
        """``DELETE /admin/faults/{id}``: remove one fault."""
        found(self.state.faults.pop(request.path_params["id"], None), "fault")
        return empty()

    async def clear_faults(self, request: Request) -> Response:
        """``DELETE /admin/faults``: remove every fault."""
        self.state.faults.clear()
        return empty()

    async def stats(self, request: Request) -> Response:
        """``GET /admin/stats``: how much data there is, and how much of it is synthetic."""
        return JSONResponse(self.state.stats())

    async def admin_customer(self, request: Request) -> Response:
        """``GET /admin/customers/{id}``: any customer, without a session."""
        customer = found(self.state.customers.get(request.path_params["id"]), "customer")
        return JSONResponse(customer.to_json())

    def routes(self) -> list[Route]:
        """Return the URL map."""
        r = Route
        return [
            r("/customers", self.create_customer, methods=["POST"]),
            r("/customers", self.list_synthetic_customers, methods=["GET"]),
            r("/customers/{id}", self.get_customer, methods=["GET"]),
            r("/customers/{id}", self.delete_customer, methods=["DELETE"]),
            r("/customers/{id}/confirm", self.confirm_customer, methods=["POST"]),
            r("/sessions", self.create_session, methods=["POST"]),
            r("/invoices", self.create_invoice, methods=["POST"]),
            r("/invoices", self.list_invoices, methods=["GET"]),
            r("/invoices/{id}", self.get_invoice, methods=["GET"]),
            r("/invoices/{id}", self.delete_invoice, methods=["DELETE"]),
            r("/invoices/{id}/pdf", self.invoice_pdf, methods=["GET"]),
            r("/invoices/{id}/void", self.void_invoice, methods=["POST"]),
            r("/invoices/{id}/payments", self.create_payment, methods=["POST"]),
            r("/challenges/{id}", self.get_challenge, methods=["GET"]),
            r("/challenges/{id}", self.answer_challenge, methods=["POST"]),
            r("/payments/{id}/refund", self.refund_payment, methods=["POST"]),
            *self.state.edge.routes(),
            r("/health", self.health, methods=["GET"]),
            r("/openapi.json", self.openapi, methods=["GET"]),
            r("/delay/{ms:int}", self.delay, methods=["GET"]),
            r("/admin/faults", self.add_fault, methods=["POST"]),
            r("/admin/faults", self.list_faults, methods=["GET"]),
            r("/admin/faults", self.clear_faults, methods=["DELETE"]),
            r("/admin/faults/{id}", self.remove_fault, methods=["DELETE"]),
            r("/admin/stats", self.stats, methods=["GET"]),
            r("/admin/customers/{id}", self.admin_customer, methods=["GET"]),
        ]


async def handle_error(request: Request, exc: Exception) -> Response:
    """Answer API and routing errors as JSON."""
    if isinstance(exc, ApiError):
        body: Json = {"error": exc.message}
        if exc.fields is not None:
            body["fields"] = exc.fields
        return JSONResponse(body, exc.status)
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


def create_app(
    *,
    pops: Iterable[str] = DEFAULT_POPS,
    cdn_ttl: int = DEFAULT_TTL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """Return a demo API app with fresh state (``app.state.demo``): no customers, seeded objects.

    ``pops`` are the CDN edge locations that keys are spread over, ``cdn_ttl`` the objects'
    ``max-age`` and ``clock`` the edge cache's monotonic clock (tests pass a fake one).
    """
    state = DemoState()
    state.edge = ObjectEdge(
        find_fault=state.find_fault, objects=seed_objects(cdn_ttl), pops=tuple(pops), clock=clock
    )
    app = Starlette(
        routes=DemoApi(state).routes(),
        middleware=[Middleware(FaultInjector, state=state)],
        exception_handlers={ApiError: handle_error, HTTPException: handle_error},
    )
    app.state.demo = state
    return app
