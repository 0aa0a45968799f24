"""The typed demo API client (:mod:`synthetic_exporter.demo.client`), on the agent's client.

The generated ``Client``/``AuthenticatedClient`` normally build their own ``httpx`` client; a
check gives them the target's client instead, with ``set_async_httpx_client``, so typed calls
send the synthetic-test marker and are measured (phases, metrics) like ``t.http`` calls::

    api = public_client(t)                     # sign-up, log-in, challenges
    me = customer_client(t, session.token)     # the customer's own invoices and payments

A generated ``AuthenticatedClient`` only adds its bearer token to clients it builds itself, and
``t.http`` is shared by every suite, so ``customer_client`` attaches :class:`BearerClient`: a
view of ``t.http`` that adds ``Authorization`` to its own requests and sends them through
``t.http`` (same connections, same instrumentation).

Regenerate the client with ``scripts/generate-demo-client.sh`` after changing the demo API.
The client is generated code that needs the ``demo`` extra (``attrs``); the production image
leaves it out, so this module imports it only when a check calls for it, and
:func:`skip_without_typed_client` turns its absence into a skipped test rather than a load
error.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from synthetic_exporter import T

if TYPE_CHECKING:
    from synthetic_exporter.demo.client import AuthenticatedClient, Client
    from synthetic_exporter.demo.client.types import Response

TYPED_CLIENT = "synthetic_exporter.demo.client"

X = TypeVar("X")


class _NoTransport(httpx.AsyncBaseTransport):
    """The view never sends by itself; everything goes through the wrapped client."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("BearerClient sends through the client it wraps")


class BearerClient(httpx.AsyncClient):
    """``inner`` plus ``Authorization: Bearer <token>``, without changing ``inner``."""

    def __init__(self, inner: httpx.AsyncClient, token: str) -> None:
        super().__init__(
            base_url=inner.base_url,
            headers={**inner.headers, "Authorization": f"Bearer {token}"},
            timeout=inner.timeout,
            transport=_NoTransport(),
            trust_env=False,
        )
        self._inner = inner

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        """Send through the wrapped client: its connections, hooks and instrumentation."""
        return await self._inner.send(request, **kwargs)


def typed_client_missing() -> str:
    """Return why the typed client cannot be imported, or ``""`` when it can."""
    for module in (TYPED_CLIENT, "attrs"):
        if importlib.util.find_spec(module) is None:
            return (
                f"the typed demo client is not installed (no module {module!r}):"
                " install synthetic-exporter[demo]"
            )
    return ""


def skip_without_typed_client(t: T) -> None:
    """Skip the test when the typed client is not installed (the production image)."""
    missing = typed_client_missing()
    if missing:
        t.skip(missing)


def public_client(t: T) -> Client:
    """The typed client for endpoints without a session, on ``t.http``."""
    from synthetic_exporter.demo.client import Client

    client = Client(base_url=str(t.http.base_url), raise_on_unexpected_status=True)
    return client.set_async_httpx_client(t.http)


def customer_client(t: T, token: str) -> AuthenticatedClient:
    """The typed client for a logged-in customer, on ``t.http``."""
    from synthetic_exporter.demo.client import AuthenticatedClient

    client = AuthenticatedClient(
        base_url=str(t.http.base_url), token=token, raise_on_unexpected_status=True
    )
    return client.set_async_httpx_client(BearerClient(t.http, token))


def expect(response: Response[Any], status: int, kind: type[X]) -> X:
    """The parsed body of a ``*_detailed`` call, which must be ``status`` and a ``kind``."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code.value}: {response.content[:500]!r}"
    )
    parsed = response.parsed
    assert isinstance(parsed, kind), f"expected a {kind.__name__}, got {parsed!r}"
    return parsed
