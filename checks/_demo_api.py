"""The typed demo API client (``checks/_demo_client``), wired to the agent's instrumented client.

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
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from _demo_client import AuthenticatedClient, Client
from _demo_client.types import Response

from synthetic_exporter import T

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


def public_client(t: T) -> Client:
    """The typed client for endpoints without a session, on ``t.http``."""
    client = Client(base_url=str(t.http.base_url), raise_on_unexpected_status=True)
    return client.set_async_httpx_client(t.http)


def customer_client(t: T, token: str) -> AuthenticatedClient:
    """The typed client for a logged-in customer, on ``t.http``."""
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
