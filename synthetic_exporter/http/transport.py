"""An HTTP/1.1 transport for httpx on asyncio, timing each phase with its own clocks.

It replaces httpcore under ``httpx.AsyncClient`` for HTTP/1.1 targets (see
docs/architecture.md for why): an idle connection is taken from a per-origin deque in O(1)
(httpcore's pool assignment is quadratic in waiting requests, encode/httpx#3215), a response is
parsed by llhttp (``httptools``, in C) inside an asyncio protocol, and the phase clocks are
read where the bytes arrive, not through trace callbacks.

A transport given a :class:`~synthetic_exporter.http.proxy.Proxy` reaches every origin through
a ``CONNECT`` tunnel (the ``proxy`` phase: TCP to the proxy and the CONNECT round trip); TLS
and requests then run through the tunnel as on a direct connection.

What it does not do, on purpose: HTTP/2 (targets with ``http2`` keep httpx's own transport),
proxies from the environment, pipelining and upgrades; request bodies are buffered before
sending. A connection that was idle in the pool and fails before any byte of the response
arrived is retried once on a new connection, for idempotent methods only.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ipaddress
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import anyio
import httptools
import httpx

from synthetic_exporter.http.network import NetworkOptions
from synthetic_exporter.http.proxy import Handshake, Proxy, open_tunnel
from synthetic_exporter.http.timing import ACTIVE_REQUEST, HookedStream, RequestTimer

Origin = tuple[str, str, int]

DEFAULT_PORTS = {"http": 80, "https": 443}
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Stop reading from the socket while this much of a body waits for the reader.
READ_BUFFER_LIMIT = 256 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
NO_OPTIONS = NetworkOptions()
# Bytes that would let a header value start another header (or end the head).
_UNSAFE = re.compile(rb"[\r\n\0]")


class _Closed(Exception):
    """A pooled connection died before the response started (retryable)."""


@functools.lru_cache(maxsize=256)
def is_ip_address(host: str) -> bool:
    """Tell whether ``host`` is an IP address (no name to resolve); remembered per host."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _timeout(request: httpx.Request, kind: str) -> float | None:
    value = request.extensions.get("timeout", {}).get(kind)
    return float(value) if value is not None else None


class Pool:
    """Idle keep-alive connections per origin; the most recently used is taken first."""

    def __init__(self, max_per_origin: int, expiry: float) -> None:
        self.max_per_origin = max_per_origin
        self.expiry = expiry
        self.idle: dict[Origin, deque[Connection]] = {}
        self.closed = False

    def take(self, origin: Origin) -> Connection | None:
        """Return a usable idle connection to ``origin`` (closing dead ones), if any."""
        connections = self.idle.get(origin)
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            if connection.usable(now, self.expiry):
                return connection
            connection.close()
        return None

    def put(self, connection: Connection) -> None:
        """Keep ``connection`` for reuse, or close it if the pool is closed or full."""
        connections = self.idle.setdefault(connection.origin, deque())
        if self.closed or len(connections) >= self.max_per_origin:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        connections.append(connection)

    def size(self) -> int:
        """Return how many idle connections the pool holds."""
        return sum(len(connections) for connections in self.idle.values())

    def close(self) -> None:
        """Close every idle connection; connections in use close when put back."""
        self.closed = True
        for connections in self.idle.values():
            while connections:
                connections.pop().close()


# The pools of the suite run in progress, by transport (``per_run`` transports only).
RUN_POOLS: contextvars.ContextVar[dict[int, Pool] | None] = contextvars.ContextVar(
    "synthetic_run_pools", default=None
)


@contextmanager
def run_connections() -> Iterator[None]:
    """Give every ``per_run`` transport a pool of its own until the block ends, then close them.

    This is how ``fresh_connections`` targets make each suite run pay (and measure) its own
    DNS, TCP and TLS without building a new client per run.
    """
    pools: dict[int, Pool] = {}
    token = RUN_POOLS.set(pools)
    try:
        yield
    finally:
        RUN_POOLS.reset(token)
        for pool in pools.values():
            pool.close()


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: parses responses as bytes arrive and wakes the waiting reader."""

    def __init__(self, origin: Origin, network: NetworkOptions = NO_OPTIONS) -> None:
        self.origin = origin
        self.network = network
        self.remote_address = ""  # the address connected to (empty through a proxy)
        self.pool: Pool | None = None  # where it goes back to when its response is done
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[bool] | None = None
        self.write_waiter: asyncio.Future[None] | None = None
        self.idle_since = time.monotonic()
        self.reading_paused = False
        self._reset(None, head_only=False)

    def _reset(self, parser: httptools.HttpResponseParser | None, *, head_only: bool) -> None:
        self.parser = parser
        self.head_only = head_only
        self.closing = False  # the request asked for ``Connection: close``
        self.version = "1.1"
        self.received = False
        self.informational = False
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.message_done = False
        self.close_delimited = False
        self.keep_alive = False
        self.headers_at = 0.0
        self.done_at = 0.0
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.body_bytes = 0  # of this response, read or not (for the target's size limit)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (uvloop's transports are not ``asyncio.Transport`` subclasses)."""
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Feed the response parser; unsolicited bytes make the connection unusable."""
        parser = self.parser
        if parser is None or self.message_done:
            self._fail(httpx.RemoteProtocolError("the server sent data nobody asked for"))
            return
        self.received = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols (unsupported)"))
            return
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {exc}"))
            return
        if self.buffered > READ_BUFFER_LIMIT and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        """End a close-delimited body; otherwise the response was cut short."""
        if (
            self.headers_done
            and not self.message_done
            and self.close_delimited
            and self.error is None
        ):
            self.message_done = True
            self.keep_alive = False
            self.done_at = time.monotonic()
        self._lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake the reader with the reason the connection ended."""
        self._lost(exc)

    def pause_writing(self) -> None:
        """Make the next write wait for the socket to drain."""
        if self.write_waiter is None:
            self.write_waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        """Let writes go on."""
        waiter, self.write_waiter = self.write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # httptools callbacks

    def on_status(self, reason: bytes) -> None:
        """Keep the reason phrase."""
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        """Keep one header line (llhttp keeps the value's trailing whitespace; drop it)."""
        self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        """Note the status and how the body is delimited; skip 1xx responses."""
        assert self.parser is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.informational = True
            return
        self.status = status
        self.headers_at = time.monotonic()
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive() and not self.closing
        self.version = self.parser.get_http_version()
        if self.head_only or status in NO_BODY_STATUSES:
            self.message_done = True
            self.done_at = self.headers_at
            return
        names = {name.lower() for name, _ in self.headers}
        self.close_delimited = not names & {b"content-length", b"transfer-encoding"}

    def on_body(self, body: bytes) -> None:
        """Buffer a piece of the body for the reader; fail the connection past the size limit."""
        if self.message_done or self.error is not None:
            return
        self.body_bytes += len(body)
        limit = self.network.max_body_bytes
        if limit is not None and self.body_bytes > limit:
            self._fail(self.network.too_large())  # what is buffered stays within the limit
            return
        self.body.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        """Mark the response complete (or forget a finished 1xx response)."""
        if self.informational:
            self.informational = False
            self.reason = b""
            self.headers = []
            return
        if not self.message_done and self.error is None:
            self.message_done = True
            self.done_at = time.monotonic()

    # used by the transport

    def usable(self, now: float, expiry: float) -> bool:
        """Tell whether an idle connection can carry another request."""
        return (
            not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and now - self.idle_since < expiry
        )

    def begin(self, *, head_only: bool) -> None:
        """Prepare for the next response."""
        parser = httptools.HttpResponseParser(self)
        # Accept obsolete line folding, as RFC 9112 asks of clients (and as h11 does).
        parser.set_dangerous_leniencies(lenient_headers=True)
        self._reset(parser, head_only=head_only)

    async def write(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        """Write ``data``, waiting (up to ``timeout``) while the socket's buffer is full."""
        if self.closed or self.transport is None:
            raise _Closed()
        self.transport.write(data)
        waiter = self.write_waiter
        if waiter is not None:
            try:
                with anyio.fail_after(timeout):
                    await asyncio.shield(waiter)
            except TimeoutError:
                raise httpx.WriteTimeout("timed out sending the request") from None

    async def wait(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Wait for more of the response (or the end of the connection)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self.waiter = waiter
        timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            woke = await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()
        if not woke:
            raise httpx.ReadTimeout("timed out waiting for the response")

    def take_body(self) -> bytes:
        """Return the body received so far (and resume reading if it was paused)."""
        data = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body.clear()
        self.buffered = 0
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def check(self) -> None:
        """Raise the error that ended the connection before the response did."""
        if self.error is not None:
            raise self.error
        if self.closed and not self.message_done:
            if not self.received:
                raise _Closed()
            raise httpx.RemoteProtocolError("the server closed the connection mid-response")

    def close(self) -> None:
        """Close the connection now."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: Exception) -> None:
        self.error = error
        self.close()
        self._wake()

    def _lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None and self.error is None and not self.message_done and self.received:
            self.error = httpx.ReadError(str(exc) or type(exc).__name__)
        self._wake()
        self.resume_writing()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class ResponseBody(HookedStream):
    """A response body read from its connection; closing it returns the connection to the pool."""

    def __init__(
        self, connection: Connection, read_timeout: float | None, release: Callable[..., None]
    ) -> None:
        self.connection = connection
        self.read_timeout = read_timeout
        self.release = release
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self.connection
        try:
            while True:
                if connection.body:
                    yield connection.take_body()
                elif connection.message_done:
                    return
                else:
                    connection.check()
                    await connection.wait(self.read_timeout)
        except Exception as exc:
            if self.after_error is not None:
                self.after_error(exc)
            raise

    async def aclose(self) -> None:
        """Give the connection back (or close it if the body was not read to its end)."""
        if not self.closed:
            self.closed = True
            try:
                self.release(self.connection)
            finally:
                if self.after_close is not None:
                    self.after_close()


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio with an O(1) keep-alive pool per origin and phase clocks.

    With ``per_run``, connections are kept only within the suite run in progress (see
    :func:`run_connections`); outside a run every request gets a connection of its own.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        make_ssl_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
        max_keepalive_per_origin: int = 100,
        keepalive_expiry: float = 5.0,
        per_run: bool = False,
        proxy: Proxy | None = None,
        server_names: Mapping[str, str] | None = None,
        network: NetworkOptions = NO_OPTIONS,
    ) -> None:
        self.proxy = proxy
        # The TLS server name sent and verified instead of a host's own (a target's SERVER_NAME).
        self.server_names = dict(server_names or {})
        self.network = network
        self.ssl_context = ssl_context
        self.make_ssl_context = make_ssl_context
        self.max_keepalive = max_keepalive_per_origin
        self.keepalive_expiry = keepalive_expiry
        self.per_run = per_run
        self.pool = Pool(max_keepalive_per_origin, keepalive_expiry)

    def idle_connections(self) -> int:
        """Return how many idle connections the pool holds (the current run's, if ``per_run``)."""
        pool = self._pool()
        return pool.size() if pool is not None else 0

    def _pool(self) -> Pool | None:
        if not self.per_run:
            return self.pool
        pools = RUN_POOLS.get()
        if pools is None:
            return None
        pool = pools.get(id(self))
        if pool is None:
            pool = pools[id(self)] = Pool(self.max_keepalive, self.keepalive_expiry)
        return pool

    def prepare(self, request: httpx.Request) -> None:
        """Do the client set-up ``request`` needs, before its clock starts.

        The TLS context is made once, at the first https request: with the system's CAs it
        takes about 25 ms, the client's work and not the target's latency.
        """
        if self.ssl_context is None and request.url.scheme == "https":
            self.ssl_context = self.make_ssl_context()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on an idle connection of its origin, or a new one."""
        url = request.url
        if url.scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        origin = (url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme])
        timer = ACTIVE_REQUEST.get()
        head, body, closing = await _serialize(request)
        pool = self._pool()
        connection = pool.take(origin) if pool is not None else None
        if connection is not None:
            try:
                return await self._exchange(connection, request, head, body, closing, timer)
            except _Closed:
                if request.method not in IDEMPOTENT:
                    raise httpx.RemoteProtocolError(
                        "the server closed a kept-alive connection", request=request
                    ) from None
        connection = await self._connect(origin, request, timer)
        connection.pool = pool
        try:
            return await self._exchange(connection, request, head, body, closing, timer)
        except _Closed:
            raise httpx.RemoteProtocolError(
                "the server closed the connection without a response", request=request
            ) from None

    async def _exchange(
        self,
        connection: Connection,
        request: httpx.Request,
        head: bytes,
        body: bytes,
        closing: bool,
        timer: RequestTimer | None,
    ) -> httpx.Response:
        read_timeout = _timeout(request, "read")
        if timer is not None:
            timer.remote_address = connection.remote_address
        try:
            connection.begin(head_only=request.method == "HEAD")
            connection.closing = closing
            sent = time.monotonic()
            await connection.write(head + body if len(body) < 65536 else head, None)
            if len(body) >= 65536:
                await connection.write(body, _timeout(request, "write"))
            while not connection.headers_done:
                connection.check()
                await connection.wait(read_timeout)
        except BaseException:
            connection.close()
            raise
        if timer is not None:
            timer.marks["processing.start"] = sent
            timer.marks["processing.end"] = connection.headers_at
            timer.marks["transfer.start"] = connection.headers_at
        stream = ResponseBody(connection, read_timeout, self._release_for(timer))
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=stream,
            extensions={
                "http_version": b"HTTP/" + connection.version.encode("ascii"),
                "reason_phrase": connection.reason,
            },
        )

    def _release_for(self, timer: RequestTimer | None) -> Callable[[Connection], None]:
        def release(connection: Connection) -> None:
            if timer is not None and connection.message_done:
                timer.marks["transfer.end"] = connection.done_at
            self._release(connection)

        return release

    def _release(self, connection: Connection) -> None:
        reusable = (
            connection.message_done
            and connection.keep_alive
            and not connection.closed
            and connection.error is None
            and connection.pool is not None
        )
        if not reusable or connection.pool is None:
            connection.close()
            return
        connection.parser = None
        connection.body.clear()
        connection.buffered = 0
        if connection.reading_paused and connection.transport is not None:
            connection.reading_paused = False
            connection.transport.resume_reading()
        connection.pool.put(connection)

    async def _connect(
        self, origin: Origin, request: httpx.Request, timer: RequestTimer | None
    ) -> Connection:
        scheme, host, port = origin
        timeout = _timeout(request, "connect")
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        try:
            with anyio.fail_after(timeout):
                if proxy is None:
                    resolved = await self._resolve(loop, host, port, timer)
                    addresses = self.network.order(host, resolved)
                    connection = await self._open(loop, origin, addresses, timer)
                else:
                    try:
                        addresses = await self._resolve(loop, proxy.host, proxy.port, timer)
                    except httpx.ConnectError as exc:
                        raise httpx.ConnectError(f"proxy {proxy.name}: {exc}") from exc
                    connection = await self._tunnel(loop, proxy, origin, addresses, timer)
                    connection.network = self.network
                if scheme == "https":
                    await self._start_tls(loop, connection, host, timer)
        except TimeoutError:
            via = f" through proxy {proxy.name}" if proxy is not None else ""
            raise httpx.ConnectTimeout(f"connecting to {host}:{port}{via} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return connection

    @staticmethod
    async def _tunnel(
        loop: asyncio.AbstractEventLoop,
        proxy: Proxy,
        origin: Origin,
        addresses: list[str],
        timer: RequestTimer | None,
    ) -> Connection:
        """Open a CONNECT tunnel to ``origin`` through ``proxy``; time it as ``proxy``."""
        start = time.monotonic()
        handshake: Handshake | None = None
        error: OSError | None = None
        for address in addresses:
            try:
                _, handshake = await loop.create_connection(Handshake, address, proxy.port)
                break
            except OSError as exc:
                error = exc
        if handshake is None or handshake.transport is None:
            reason = (str(error) or type(error).__name__) if error else "no address"
            raise httpx.ConnectError(f"cannot connect to proxy {proxy.name}: {reason}")
        transport = handshake.transport
        try:
            await open_tunnel(transport, handshake, proxy, origin[1], origin[2])
        except BaseException:
            transport.abort()
            raise
        connection = Connection(origin)
        transport.set_protocol(connection)
        connection.connection_made(transport)
        if timer is not None:
            timer.marks["proxy.start"] = start
            timer.marks["proxy.end"] = time.monotonic()
        return connection

    @staticmethod
    async def _resolve(
        loop: asyncio.AbstractEventLoop, host: str, port: int, timer: RequestTimer | None
    ) -> list[str]:
        if is_ip_address(host):
            return [host]
        start = time.monotonic()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if timer is not None:
            timer.resolve_seconds = time.monotonic() - start
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def _open(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        addresses: list[str],
        timer: RequestTimer | None,
    ) -> Connection:
        port = origin[2]
        network = self.network
        error: OSError | None = None
        for address in addresses:
            start = time.monotonic()
            try:
                _, connection = await loop.create_connection(
                    lambda: Connection(origin, network), address, port
                )
            except OSError as exc:
                error = exc
                continue
            connection.remote_address = address
            if timer is not None:
                timer.marks["connect.start"] = start
                timer.marks["connect.end"] = time.monotonic()
            return connection
        raise error or OSError(f"no address for {origin[1]}")

    async def _start_tls(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: Connection,
        host: str,
        timer: RequestTimer | None,
    ) -> None:
        assert connection.transport is not None
        if self.ssl_context is None:  # made by prepare(), unless called without it
            self.ssl_context = self.make_ssl_context()
        context = self.ssl_context
        server_name = self.server_names.get(host, host)
        start = time.monotonic()
        try:
            transport = await loop.start_tls(
                connection.transport, connection, context, server_hostname=server_name
            )
        except BaseException:
            connection.close()
            raise
        if transport is None:
            raise httpx.ConnectError(f"TLS to {host} failed: the connection closed")
        connection.transport = transport
        if timer is not None:
            timer.marks["tls.start"] = start
            timer.marks["tls.end"] = time.monotonic()
            timer.tls_details(
                transport.get_extra_info("ssl_object"), transport.get_extra_info("peercert")
            )

    async def aclose(self) -> None:
        """Close every idle connection; connections in use close when released."""
        self.pool.close()


async def _serialize(request: httpx.Request) -> tuple[bytes, bytes, bool]:
    """Return the request's head and (framed) body, and whether it asks to close."""
    chunked = closing = False
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        if _UNSAFE.search(name) or _UNSAFE.search(value):
            raise httpx.LocalProtocolError(f"invalid header {name!r}: line breaks or NUL")
        lower = name.lower()
        if lower == b"transfer-encoding" and value.lower() == b"chunked":
            chunked = True
        elif lower == b"connection":
            closing = closing or b"close" in {t.strip().lower() for t in value.split(b",")}
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    body = await _read_body(request.stream)
    if chunked:
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    return b"".join(lines), body, closing


async def _read_body(stream: Any) -> bytes:
    return b"".join([part async for part in stream])
