"""An HTTP/1.1 transport for httpx on asyncio, timing each phase with its own clocks.

It replaces httpcore under ``httpx.AsyncClient`` for HTTP/1.1 targets (see
docs/architecture.md for why): an idle connection is taken from a per-origin deque in O(1)
(httpcore's pool assignment is quadratic in waiting requests, encode/httpx#3215), a response is
parsed by llhttp (``httptools``, in C) inside an asyncio protocol, and the phase clocks are
read where the bytes arrive, not through trace callbacks.

This module is the transport itself: it takes a connection from the pool
(:mod:`synthetic_exporter.http.pool`) or opens one (name resolution, TCP, proxy tunnel, TLS,
each timed here), serializes the request and exchanges it on the connection, whose protocol
parses the response (:mod:`synthetic_exporter.http.connection`).

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
import functools
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import httpx

from synthetic_exporter.http.connection import NO_OPTIONS, Closed, Connection, Origin, ResponseBody
from synthetic_exporter.http.network import NetworkOptions
from synthetic_exporter.http.pool import RUN_POOLS, Pool, run_connections
from synthetic_exporter.http.proxy import Handshake, Proxy, open_tunnel
from synthetic_exporter.http.timing import ACTIVE_REQUEST, RequestTimer

# What other modules import from here (run_connections lives in pool; callers keep this path).
__all__ = ["DEFAULT_PORTS", "IDEMPOTENT", "Http11Transport", "is_ip_address", "run_connections"]

DEFAULT_PORTS = {"http": 80, "https": 443}
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Bytes that would let a header value start another header (or end the head).
_UNSAFE = re.compile(rb"[\r\n\0]")


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
            except Closed:
                if request.method not in IDEMPOTENT:
                    raise httpx.RemoteProtocolError(
                        "the server closed a kept-alive connection", request=request
                    ) from None
        connection = await self._connect(origin, request, timer)
        connection.pool = pool
        try:
            return await self._exchange(connection, request, head, body, closing, timer)
        except Closed:
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
