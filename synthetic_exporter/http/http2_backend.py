"""The HTTP/2 path: httpx requests on an httpcore pool whose network backend times resolution.

Targets with ``http2`` run on httpcore (with h2), which resolves names inside ``connect_tcp``,
out of sight of its trace hook. :class:`TimedBackend` resolves first (timed, as the
``resolve`` phase of the running request's :class:`~synthetic_exporter.http.timing.RequestTimer`),
then connects to the addresses in order. :class:`Http2Transport` is httpx's
``AsyncHTTPTransport`` made of public parts: an ``httpcore.AsyncConnectionPool`` given that
backend (httpx's own transport takes no backend), httpcore's errors raised as httpx's. This
module is imported only when such a target exists, so that httpcore and h2 stay out of the
process otherwise.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import anyio
import httpcore
import httpx

from synthetic_exporter.http.timing import ACTIVE_REQUEST
from synthetic_exporter.http.transport import is_ip_address


class TimedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that resolves names itself (timed), then connects to the addresses."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host`` (timed), then connect to its addresses in order."""
        if is_ip_address(host):
            addresses = [host]
        else:
            start = time.monotonic()
            try:
                with anyio.fail_after(timeout):
                    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            timer = ACTIVE_REQUEST.get()
            if timer is not None:
                resolved = time.monotonic()
                timer.resolve_seconds = resolved - start
                timer.marks["connect.start"] = resolved  # httpcore's mark included resolving
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to a Unix socket (untimed)."""
        return await self.inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Sleep."""
        await self.inner.sleep(seconds)


# httpcore's errors and the httpx errors httpx's own transport raises for them.
ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}
# httpx's default limits (httpx.AsyncHTTPTransport()).
MAX_CONNECTIONS = 100
MAX_KEEPALIVE_CONNECTIONS = 20
KEEPALIVE_EXPIRY_SECONDS = 5.0


def httpx_error(exc: Exception) -> httpx.TransportError | None:
    """Return the httpx error for httpcore's ``exc`` (the most specific one), or ``None``."""
    mapped: type[httpx.TransportError] | None = None
    for theirs, ours in ERRORS.items():
        if isinstance(exc, theirs) and (mapped is None or issubclass(ours, mapped)):
            mapped = ours
    return mapped(str(exc)) if mapped is not None else None


class _Body(httpx.AsyncByteStream):
    """httpcore's response body, its errors raised as httpx's."""

    def __init__(self, inner: AsyncIterable[bytes]) -> None:
        self.inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                yield chunk
        except Exception as exc:
            mapped = httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


class Http2Transport(httpx.AsyncBaseTransport):
    """httpx's transport for HTTP/2 (and HTTP/1.1 by ALPN), on a pool with :class:`TimedBackend`.

    It reports its phases through httpcore's ``trace`` extension, which the instrumented
    transport sets.
    """

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
            http1=True,
            http2=True,
            network_backend=TimedBackend(httpcore.AnyIOBackend()),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on the pool; return its response, its body still to read."""
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self.pool.handle_async_request(core_request)
        except Exception as exc:
            mapped = httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close the pool's connections."""
        await self.pool.aclose()
