"""The HTTP/2 path: httpx requests on an httpcore pool whose network backend times resolution.

Targets with ``http2`` run on httpcore (with h2), which resolves names inside ``connect_tcp``,
out of sight of its trace hook. :class:`TimedBackend` resolves first (timed, as the
``resolve`` phase of the running request's :class:`~synthetic_exporter.http.timing.RequestTimer`),
then connects to the addresses in order. :class:`Http2Transport` is httpx's
``AsyncHTTPTransport`` made of public parts: an ``httpcore.AsyncConnectionPool`` given that
backend (httpx's own transport takes no backend), httpcore's errors raised as httpx's. This
module is imported only when such a target exists, so that httpcore and h2 stay out of the
process otherwise.

Through a proxy (a target's ``proxy_url``), the pool is httpcore's ``AsyncHTTPProxy``: a
``CONNECT`` tunnel per connection, TLS (and ALPN) with the target inside it. :class:`ProxyTrace`
turns httpcore's events for the tunnel into the ``proxy`` phase (TCP to the proxy and the
CONNECT round trip), as the HTTP/1.1 transport marks it, and errors name the proxy. Plain
``http://`` URLs are refused there: httpcore would send them to the proxy in absolute form,
not through a tunnel, and their phases would not mean the same.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from typing import Any

import anyio
import httpcore
import httpx

from synthetic_exporter.http.network import NetworkOptions, NoAddress, ResponseTooLarge, shut_down
from synthetic_exporter.http.proxy import Proxy
from synthetic_exporter.http.timing import ACTIVE_REQUEST, RequestTimer
from synthetic_exporter.http.transport import is_ip_address

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]
ENDED = "the connection was closed: a response on it exceeded the size limit"


class ClosableStream(httpcore.AsyncNetworkStream):
    """A network stream that can be ended from outside httpcore (:meth:`end`).

    httpcore keeps an HTTP/2 connection whose response was closed early in its pool, while
    the server may go on sending. After :meth:`end`, the TCP connection is shut down and every
    read or write fails at once, so that httpcore marks the connection broken and never hands
    it out again.

    ``server_names`` maps a host to the TLS server name its connection starts TLS with (a
    target's ``SERVER_NAME``): httpcore starts TLS with the URL's host, and through a proxy it
    ignores the ``sni_hostname`` extension, so the name is swapped here, for direct and
    tunnelled connections alike.
    """

    def __init__(
        self, inner: httpcore.AsyncNetworkStream, server_names: Mapping[str, str] | None = None
    ) -> None:
        self.inner = inner
        self.server_names = server_names or {}
        self.ended = False

    def end(self) -> None:
        """Shut the connection down; later reads and writes fail."""
        self.ended = True
        shut_down(self.inner)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Read from the connection."""
        if self.ended:
            raise httpcore.ReadError(ENDED)
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Write to the connection."""
        if self.ended:
            raise httpcore.WriteError(ENDED)
        await self.inner.write(buffer, timeout)

    async def aclose(self) -> None:
        """Close the connection."""
        await self.inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
    ) -> httpcore.AsyncNetworkStream:
        """Start TLS (with the host's configured server name); the TLS stream can be ended too."""
        name = self.server_names.get(server_hostname, server_hostname) if server_hostname else None
        return ClosableStream(await self.inner.start_tls(ssl_context, name, timeout))

    def get_extra_info(self, info: str) -> Any:
        """Return the connection's details, as httpcore's streams do."""
        if info == "is_readable" and self.ended:
            return True  # as a connection the server closed
        return self.inner.get_extra_info(info)


class TimedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that resolves names itself (timed), then connects to the addresses."""

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend,
        proxy: Proxy | None = None,
        network: NetworkOptions | None = None,
        server_names: Mapping[str, str] | None = None,
    ) -> None:
        self.inner = inner
        self.proxy = proxy  # every TCP connection goes to it, if set
        # Address order for the target's own name (a proxy's name keeps the resolver's order).
        self.network = network if network is not None and proxy is None else NetworkOptions()
        self.server_names = dict(server_names or {})  # TLS server name per host (ClosableStream)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host`` (timed), then connect to its addresses in order."""
        if self.proxy is None:
            return await self._connect_tcp(host, port, timeout, local_address, socket_options)
        name = self.proxy.name
        try:
            return await self._connect_tcp(host, port, timeout, local_address, socket_options)
        except httpcore.ConnectTimeout as exc:
            raise httpcore.ConnectTimeout(f"connecting to proxy {name}: {exc}") from exc
        except httpcore.ConnectError as exc:
            raise httpcore.ConnectError(f"cannot connect to proxy {name}: {exc}") from exc

    async def _connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.AsyncNetworkStream:
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
        try:
            addresses = self.network.order(host, addresses)
        except NoAddress as exc:
            raise httpcore.ConnectError(str(exc)) from None
        error: Exception | None = None
        for address in addresses:
            try:
                stream = await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
                return ClosableStream(stream, self.server_names)
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


class ProxyTrace:
    """httpcore's trace events through a proxy, turned into the ``proxy`` phase.

    A new tunnel shows as ``connect_tcp`` (to the proxy), the CONNECT exchange (HTTP/1.1
    events) and ``proxy.start_tls``; they become ``proxy`` (from the TCP connect, after
    resolving the proxy's name, to the CONNECT answer) and ``tls``. Every other event goes to
    the request's own trace as it is.
    """

    def __init__(self, inner: Trace, timer: RequestTimer) -> None:
        self.inner = inner
        self.timer = timer
        self.tunnelling = False  # between the TCP connect and the proxy's answer

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        """Take one httpcore trace event."""
        marks = self.timer.marks
        if event == "connection.connect_tcp.started":
            marks["proxy.start"] = time.monotonic()
            self.tunnelling = True
        elif event == "connection.connect_tcp.complete":
            resolved = marks.pop("connect.start", None)  # TimedBackend's: after resolving
            if resolved is not None:
                marks["proxy.start"] = resolved
        elif self.tunnelling:
            if event == "http11.receive_response_headers.complete":
                marks["proxy.end"] = time.monotonic()
                self.tunnelling = False
        elif event.startswith("proxy.start_tls."):
            await self.inner("connection." + event.removeprefix("proxy."), info)
        else:
            await self.inner(event, info)


class _Body(httpx.AsyncByteStream):
    """httpcore's response body, its errors raised as httpx's, its size limited.

    Past the target's ``max_body_bytes`` the connection under it is shut down (an HTTP/2
    connection would otherwise stay in the pool while the server goes on sending) and
    :class:`~synthetic_exporter.http.network.ResponseTooLarge` is raised.
    """

    def __init__(
        self,
        inner: AsyncIterable[bytes],
        network: NetworkOptions,
        network_stream: object = None,
        after_end: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.inner = inner
        self.network = network
        self.network_stream = network_stream
        self.after_end = after_end

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limit = self.network.max_body_bytes
        received = 0
        chunks = aiter(self.inner)
        try:
            async for chunk in chunks:
                received += len(chunk)
                if limit is not None and received > limit:
                    await self._end(chunks)
                    raise self.network.too_large()
                yield chunk
        except ResponseTooLarge:
            raise
        except Exception as exc:
            mapped = httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def _end(self, chunks: AsyncIterator[bytes]) -> None:
        """End the connection, then let httpcore see it fail (dropping what it buffered)."""
        if not isinstance(self.network_stream, ClosableStream):
            return
        self.network_stream.end()
        try:
            async for _ in chunks:
                pass
        except Exception as exc:  # the read error httpcore keeps on the connection until dropped
            exc.__traceback__ = None  # and with it every frame, the body read so far included
        if self.after_end is not None:
            await self.after_end()

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


class Http2Transport(httpx.AsyncBaseTransport):
    """httpx's transport for HTTP/2 (and HTTP/1.1 by ALPN), on a pool with :class:`TimedBackend`.

    It reports its phases through httpcore's ``trace`` extension, which the instrumented
    transport sets.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        proxy: Proxy | None = None,
        network: NetworkOptions | None = None,
        server_names: Mapping[str, str] | None = None,
    ) -> None:
        self.proxy = proxy
        self.network = network if network is not None else NetworkOptions()
        options: dict[str, Any] = {
            "ssl_context": ssl_context,
            "max_connections": MAX_CONNECTIONS,
            "max_keepalive_connections": MAX_KEEPALIVE_CONNECTIONS,
            "keepalive_expiry": KEEPALIVE_EXPIRY_SECONDS,
            "http1": True,
            "http2": True,
            "network_backend": TimedBackend(
                httpcore.AnyIOBackend(), proxy, self.network, server_names
            ),
        }
        self.pool: httpcore.AsyncConnectionPool
        if proxy is None:
            self.pool = httpcore.AsyncConnectionPool(**options)
        else:
            auth = [(b"Proxy-Authorization", proxy.authorization)] if proxy.authorization else []
            self.pool = httpcore.AsyncHTTPProxy(
                proxy_url=f"http://{proxy.name}", proxy_headers=auth, **options
            )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on the pool; return its response, its body still to read."""
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        extensions = request.extensions
        timer = ACTIVE_REQUEST.get()
        if self.proxy is not None:
            if url.scheme != "https":
                raise httpx.UnsupportedProtocol(
                    f"{url.scheme}:// through proxy {self.proxy.name} on an HTTP2 target:"
                    " only https:// is tunnelled (set HTTP2=false for http://)"
                )
            if timer is not None and "trace" in extensions:
                extensions = {**extensions, "trace": ProxyTrace(extensions["trace"], timer)}
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=extensions,
        )
        try:
            response = await self.pool.handle_async_request(core_request)
        except Exception as exc:
            mapped = httpx_error(exc)
            if mapped is None:
                raise
            if self.proxy is not None:
                mapped = _proxy_error(mapped, self.proxy, url, timer)
            raise mapped from exc
        assert isinstance(response.stream, AsyncIterable)
        network_stream = response.extensions.get("network_stream")
        if timer is not None and self.proxy is None:
            timer.remote_address = _server_address(network_stream)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream, self.network, network_stream, self._drop_broken),
            extensions=response.extensions,
        )

    async def _drop_broken(self) -> None:
        """Close the pool's idle connections that can take no more requests (ended ones).

        httpcore would keep them (and their buffers) until they expire or the pool is full.
        """
        for connection in self.pool.connections:
            if connection.is_idle() and not connection.is_available():
                await connection.aclose()

    async def aclose(self) -> None:
        """Close the pool's connections."""
        await self.pool.aclose()


def _server_address(network_stream: object) -> str:
    """Return the IP address an httpcore network stream is connected to (empty if unknown)."""
    get_extra_info = getattr(network_stream, "get_extra_info", None)
    address = get_extra_info("server_addr") if get_extra_info is not None else None
    return str(address[0]) if isinstance(address, tuple) and address else ""


def _proxy_error(
    error: httpx.TransportError, proxy: Proxy, url: httpx.URL, timer: RequestTimer | None
) -> httpx.TransportError:
    """Name the proxy in an error raised while the tunnel was being opened."""
    where = f"{url.host}:{url.port or 443}"
    if isinstance(error, httpx.ProxyError):
        return httpx.ProxyError(f"proxy {proxy.name} refused CONNECT {where}: {error}")
    marks = timer.marks if timer is not None else {}
    tunnelling = "proxy.start" in marks and "proxy.end" not in marks
    if isinstance(error, httpx.TimeoutException) and tunnelling:
        return httpx.ConnectTimeout(f"connecting to {where} through proxy {proxy.name} timed out")
    return error
