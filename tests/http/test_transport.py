"""Conformance of ``Http11Transport`` with httpx's default transport (httpcore).

Every test runs twice through the ``make_client`` fixture: once on
``httpx.AsyncHTTPTransport`` (which proves the test itself right) and once on
``synthetic_exporter.http.transport.Http11Transport``. The servers are small raw HTTP/1.1
servers on 127.0.0.1, started in the test's own event loop, so that each test controls
the exact bytes on the wire and can count the TCP connections it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import anyio
import httpx
import pytest
import trustme

# Generous bounds: a hang fails fast, a slow CI machine does not fail.
CLIENT_TIMEOUT_SECONDS = 3.0
PROMPTLY_SECONDS = 1.5
CANCEL_SAFE_SECONDS = 1.0

TransportBuilder = Callable[[ssl.SSLContext, int, float], httpx.AsyncBaseTransport]


# --------------------------------------------------------------------------- servers


class ServerRequest:
    """A request as the server read it off the wire."""

    def __init__(
        self,
        request_line: str,
        headers: list[tuple[str, str]],
        body: bytes,
        connection: ServerConnection,
    ) -> None:
        self.method, self.target, self.version = request_line.split(" ")
        self.headers = headers
        self.body = body
        self.connection = connection

    def header_values(self, name: str) -> list[str]:
        """Return the values of every field named ``name`` (case-insensitive)."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


class ServerConnection:
    """One accepted TCP (or TLS) connection of a ``RawServer``."""

    def __init__(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.number = number
        self.reader = reader
        self.writer = writer
        # Set when the client closed (EOF) or reset the connection.
        self.client_gone = asyncio.Event()
        # The ALPN protocol the TLS handshake selected (None: plain TCP, or no ALPN).
        ssl_object = writer.get_extra_info("ssl_object")
        self.alpn_protocol: str | None = (
            None if ssl_object is None else ssl_object.selected_alpn_protocol()
        )

    async def send(self, data: bytes) -> None:
        """Write ``data`` and wait until the transport took it."""
        self.writer.write(data)
        await self.writer.drain()

    async def send_pieces(self, pieces: Sequence[bytes], pause: float = 0.01) -> None:
        """Write ``pieces`` one by one with a pause between, so they arrive as separate reads."""
        for piece in pieces:
            await self.send(piece)
            await asyncio.sleep(pause)

    async def read_request(self) -> ServerRequest | None:
        """Read one request (head and Content-Length body); None when the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise AssertionError(f"client closed in a request head: {exc.partial!r}") from exc
            self.client_gone.set()
            return None
        request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
        headers = []
        for line in lines:
            name, colon, value = line.partition(":")
            assert colon, f"malformed request header line {line!r}"
            headers.append((name, value.strip(" \t")))
        request = ServerRequest(request_line, headers, b"", self)
        assert not request.header_values("transfer-encoding"), (
            "buffered request bodies must be sent with Content-Length"
        )
        lengths = request.header_values("content-length")
        if lengths:
            request.body = await self.reader.readexactly(int(lengths[0]))
        return request

    async def wait_for_client_close(self) -> None:
        """Discard whatever the client sends until it closes the connection."""
        while await self.reader.read(65536):
            pass
        self.client_gone.set()


Respond = Callable[[ServerRequest], Awaitable[bool]]
"""Answers one request on its connection; returns whether to keep serving the connection."""

RawHandler = Callable[[ServerConnection], Awaitable[None]]
"""Owns a whole connection (for servers that never answer, or answer garbage)."""


class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 that writes exactly the bytes its handler gives.

    With ``respond`` it reads requests one after another on each connection (keep-alive)
    and records them; with ``raw`` the handler owns the connection. Handler exceptions
    other than a client going away are re-raised when the ``async with`` block ends.
    """

    def __init__(
        self,
        respond: Respond | None = None,
        *,
        raw: RawHandler | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        assert (respond is None) != (raw is None), "give exactly one of respond and raw"
        self._respond = respond
        self._raw = raw
        self._ssl_context = ssl_context
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections: list[ServerConnection] = []
        self.requests: list[ServerRequest] = []
        self.errors: list[Exception] = []
        self.port = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(
            self._on_connection, "127.0.0.1", 0, ssl=self._ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.close()
        for connection in self.connections:
            # Abort, not close: a TLS close would wait for the client's close_notify.
            connection.writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        if exc_type is None and self.errors:
            raise self.errors[0]

    @property
    def accepted(self) -> int:
        """Return how many connections the server accepted (and handed to a handler)."""
        return len(self.connections)

    async def wait_clients_gone(self, count: int) -> None:
        """Wait (bounded) until clients closed ``count`` of the accepted connections."""
        waiters = [asyncio.ensure_future(c.client_gone.wait()) for c in self.connections]
        try:
            with anyio.fail_after(PROMPTLY_SECONDS):
                for done, next_gone in enumerate(asyncio.as_completed(waiters), start=1):
                    await next_gone
                    if done == count:
                        return
            raise AssertionError(f"only {len(self.connections)} connections, not {count}")
        finally:
            for waiter in waiters:
                waiter.cancel()

    def url(self, path: str = "/", *, scheme: str = "http", host: str = "127.0.0.1") -> str:
        """Return the URL of ``path`` on this server."""
        return f"{scheme}://{host}:{self.port}{path}"

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback (not a coroutine): the server owns and cancels the task itself.
        connection = ServerConnection(len(self.connections) + 1, reader, writer)
        self.connections.append(connection)
        self._tasks.add(asyncio.get_running_loop().create_task(self._handle(connection)))

    async def _handle(self, connection: ServerConnection) -> None:
        try:
            if self._raw is not None:
                await self._raw(connection)
            else:
                await self._serve_requests(connection)
        except (OSError, EOFError):  # reset, broken pipe, TLS alert, EOF inside a body
            connection.client_gone.set()
        except Exception as exc:
            self.errors.append(exc)
        finally:
            connection.writer.close()
            with contextlib.suppress(OSError, EOFError):
                await connection.writer.wait_closed()

    async def _serve_requests(self, connection: ServerConnection) -> None:
        assert self._respond is not None
        while (request := await connection.read_request()) is not None:
            self.requests.append(request)
            if not await self._respond(request):
                return


def http_response(
    body: bytes = b"",
    *,
    status: str = "200 OK",
    headers: Sequence[tuple[str, str]] = (),
    version: str = "HTTP/1.1",
    content_length: bool = True,
) -> bytes:
    """Return a response's bytes; with a Content-Length of ``body`` unless told not to."""
    lines = [f"{version} {status}", *(f"{name}: {value}" for name, value in headers)]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def echo_target(request: ServerRequest) -> bool:
    """Answer with the request target as the body; keep the connection."""
    await request.connection.send(http_response(request.target.encode("latin-1")))
    return True


async def get_unless_refused(make_client: ClientFactory, respond: Respond) -> httpx.Response | None:
    """GET from a server answering with ``respond``; ``None`` if the client refused the
    response with RemoteProtocolError (the documented equivalent where RFC 9112 allows both).
    Either way it must happen promptly: a hang fails."""
    async with RawServer(respond) as server:
        try:
            with anyio.fail_after(PROMPTLY_SECONDS):
                return await make_client().get(server.url())
        except httpx.RemoteProtocolError:
            return None


async def wait_client_gone(connection: ServerConnection) -> None:
    """Wait (bounded) until the client has closed ``connection``."""
    with anyio.fail_after(PROMPTLY_SECONDS):
        await connection.client_gone.wait()


# --------------------------------------------------------------------------- clients


@runtime_checkable
class CountsIdleConnections(Protocol):
    """The pool introspection method ``Http11Transport`` offers."""

    def idle_connections(self) -> int: ...


class ClientFactory:
    """Build ``httpx.AsyncClient``s on one transport kind; closes them all at teardown."""

    def __init__(self, build: TransportBuilder, ssl_context: ssl.SSLContext) -> None:
        self._build = build
        self._ssl_context = ssl_context
        self._transports: dict[httpx.AsyncClient, httpx.AsyncBaseTransport] = {}

    def __call__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: httpx.Timeout | float = CLIENT_TIMEOUT_SECONDS,
        max_keepalive: int = 100,
        keepalive_expiry: float = 5.0,
    ) -> httpx.AsyncClient:
        """Return a client; ``ssl_context`` defaults to one that trusts the test CA."""
        transport = self._build(ssl_context or self._ssl_context, max_keepalive, keepalive_expiry)
        client = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._transports[client] = transport
        return client

    def idle_connections(self, client: httpx.AsyncClient) -> int:
        """Return how many idle connections the client's transport keeps in its pool."""
        transport = self._transports[client]
        if isinstance(transport, httpx.AsyncHTTPTransport):
            # httpx keeps its httpcore pool in a private attribute; ``connections`` and
            # ``is_idle()`` are httpcore's public API.
            return sum(1 for connection in transport._pool.connections if connection.is_idle())
        assert isinstance(transport, CountsIdleConnections)
        return transport.idle_connections()

    async def aclose(self) -> None:
        """Close every client this factory built."""
        for client in self._transports:
            await client.aclose()


def build_httpcore(
    ssl_context: ssl.SSLContext, max_keepalive: int, keepalive_expiry: float
) -> httpx.AsyncBaseTransport:
    """Return httpx's default transport with equivalent settings."""
    limits = httpx.Limits(
        max_connections=100,
        max_keepalive_connections=max_keepalive,
        keepalive_expiry=keepalive_expiry,
    )
    return httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"use_uvloop": False}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Both event loops the agent may run on (it takes uvloop where installed)."""
    backend: tuple[str, dict[str, bool]] = request.param
    return backend


@pytest.fixture
def client_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client context trusting the test CA (per test: httpcore sets ALPN on it)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def server_ssl_context(
    ca: trustme.CA, *names: str, sni_seen: list[str | None] | None = None
) -> ssl.SSLContext:
    """Return a server context with a certificate for ``names``, offering h2 and http/1.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    # A server that prefers h2 would switch protocols if the client offered it.
    context.set_alpn_protocols(["h2", "http/1.1"])
    if sni_seen is not None:
        seen = sni_seen

        def record(_: ssl.SSLObject, server_name: str | None, __: ssl.SSLContext) -> None:
            seen.append(server_name)

        context.sni_callback = record
    return context


@pytest.fixture(params=["httpcore", "ours"])
async def make_client(
    request: pytest.FixtureRequest, client_ssl_context: ssl.SSLContext
) -> AsyncIterator[ClientFactory]:
    """A factory of clients on httpx's default transport, then on ``Http11Transport``."""
    build: TransportBuilder = build_httpcore
    if request.param == "ours":
        try:
            from synthetic_exporter.http.transport import (
                Http11Transport,
            )
        except ModuleNotFoundError as exc:
            if exc.name != "synthetic_exporter.http.transport":
                raise
            pytest.skip("synthetic_exporter/http/transport.py does not exist yet")

        def build_ours(
            ssl_context: ssl.SSLContext, max_keepalive: int, keepalive_expiry: float
        ) -> httpx.AsyncBaseTransport:
            transport: httpx.AsyncBaseTransport = Http11Transport(
                ssl_context=ssl_context,
                max_keepalive_per_origin=max_keepalive,
                keepalive_expiry=keepalive_expiry,
            )
            return transport

        build = build_ours
    factory = ClientFactory(build, client_ssl_context)
    try:
        yield factory
    finally:
        await factory.aclose()


# --------------------------------------------------------------------------- responses


async def test_content_length_response(make_client: ClientFactory) -> None:
    """Status, reason phrase, headers (order, case, repeats, OWS) and body come through."""

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(
            b"HTTP/1.1 200 Alright Then\r\n"
            b"Content-Type: text/plain\r\n"
            b"X-Custom-Header: Value-1\r\n"
            b"Set-Cookie: a=1; Path=/\r\n"
            b"Set-Cookie: b=2; Path=/\r\n"
            b"X-Padded:   spaced value  \r\n"
            b"Content-Length: 13\r\n"
            b"\r\n"
            b"Hello, world!"
        )
        return True

    async with RawServer(respond) as server:
        client = make_client()
        response = await client.get(server.url("/hello"))

    assert response.status_code == 200
    assert response.reason_phrase == "Alright Then"
    assert response.http_version == "HTTP/1.1"
    assert response.content == b"Hello, world!"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["CONTENT-TYPE"] == "text/plain"
    assert response.headers["x-custom-header"] == "Value-1"
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.cookies["a"] == "1"
    assert response.cookies["b"] == "2"
    # Optional whitespace around a field value is not part of the value.
    assert response.headers["x-padded"] == "spaced value"
    assert [name for name, _ in response.headers.multi_items()] == [
        "content-type",
        "x-custom-header",
        "set-cookie",
        "set-cookie",
        "x-padded",
        "content-length",
    ]
    # httpcore hands httpx the field names as the server spelled them.
    assert (b"X-Custom-Header", b"Value-1") in response.headers.raw
    assert server.requests[0].method == "GET"
    assert server.requests[0].target == "/hello"
    assert server.requests[0].version == "HTTP/1.1"


@pytest.mark.parametrize(
    ("status_line", "status_code", "reason"),
    [
        (b"HTTP/1.1 404 Not Found", 404, "Not Found"),
        (b"HTTP/1.1 503 Service Unavailable", 503, "Service Unavailable"),
        (b"HTTP/1.1 299 Whatever You Like", 299, "Whatever You Like"),
        # The reason phrase may be empty (RFC 9112 section 4); h11 also accepts the status
        # line without the SP before it, which some servers send.
        (b"HTTP/1.1 200 ", 200, ""),
        (b"HTTP/1.1 200", 200, ""),
    ],
)
async def test_status_line(
    make_client: ClientFactory, status_line: bytes, status_code: int, reason: str
) -> None:
    """The status code and the server's own reason phrase (even empty) are reported."""

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(status_line + b"\r\nContent-Length: 2\r\n\r\nok")
        return True

    async with RawServer(respond) as server:
        response = await make_client().get(server.url())

    assert response.status_code == status_code
    assert response.reason_phrase == reason
    assert response.content == b"ok"


async def test_large_header_value(make_client: ClientFactory) -> None:
    """A 32 KiB header value, arriving over several reads, is kept intact."""
    value = "v" * 32768

    async def respond(request: ServerRequest) -> bool:
        data = http_response(b"body", headers=[("X-Big", value)])
        await request.connection.send_pieces([data[:100], data[100:20000], data[20000:]])
        return True

    async with RawServer(respond) as server:
        response = await make_client().get(server.url())

    assert response.headers["x-big"] == value
    assert response.content == b"body"


async def test_chunked_response(make_client: ClientFactory) -> None:
    """A chunked body (extension, upper-case hex, trailer, split reads) is assembled.

    The connection is then reused: the transport consumed exactly the chunked framing.
    """
    alphabet = b"abcdefghijklmnopqrstuvwxyz"
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
        b"5;name=value\r\nHello\r\n"
        b"2\r\n, \r\n"
        b"1A\r\n" + alphabet + b"\r\n"
        b"0\r\nX-Checksum: abc\r\n\r\n"
    )
    # Split inside a chunk-size line, inside a CRLF, inside data and inside the trailer.
    cuts = [wire.index(b"5;name") + 3, wire.index(b"Hello") + 5 + 1, wire.index(b"1A") + 10]
    cuts.append(wire.rindex(b"X-Check") + 4)
    pieces = [wire[start:end] for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True)]

    async def respond(request: ServerRequest) -> bool:
        if request.target == "/chunked":
            await request.connection.send_pieces(pieces)
        else:
            await echo_target(request)
        return True

    async with RawServer(respond) as server:
        client = make_client()
        response = await client.get(server.url("/chunked"))
        after = await client.get(server.url("/after"))

    assert response.status_code == 200
    assert response.content == b"Hello, " + alphabet
    assert after.content == b"/after"
    assert server.accepted == 1


async def test_chunked_and_content_length(make_client: ClientFactory) -> None:
    """With both Transfer-Encoding: chunked and Content-Length, the body is never framed by
    the Content-Length.

    RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length, and such a message
    "ought to be handled as an error". httpcore (h11) decodes the chunked body; rejecting
    the response with RemoteProtocolError is the documented equivalent.
    """

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            b"6\r\nabcdef\r\n0\r\n\r\n"
        )
        return True

    response = await get_unless_refused(make_client, respond)
    if response is None:
        return
    assert response.content == b"abcdef"


async def test_close_delimited_response(make_client: ClientFactory) -> None:
    """A body with neither Content-Length nor chunked ends when the server closes."""
    pieces = [b"first piece, ", b"second piece, ", b"x" * 100_000, b" last"]

    async def respond(request: ServerRequest) -> bool:
        if request.target == "/eof":
            await request.connection.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            await request.connection.send_pieces(pieces)
            return False
        return await echo_target(request)

    async with RawServer(respond) as server:
        client = make_client()
        response = await client.get(server.url("/eof"))
        after = await client.get(server.url("/after"))

    assert response.status_code == 200
    assert response.content == b"".join(pieces)
    assert after.content == b"/after"
    assert server.accepted == 2


async def test_http10_response_is_not_reused(make_client: ClientFactory) -> None:
    """An HTTP/1.0 response without keep-alive ends the connection's use.

    The server leaves the socket open: the client must not send a second request on it.
    """

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(http_response(request.target.encode(), version="HTTP/1.0"))
        return True

    async with RawServer(respond) as server:
        client = make_client()
        first = await client.get(server.url("/one"))
        second = await client.get(server.url("/two"))
        await wait_client_gone(server.connections[0])

    assert first.http_version == "HTTP/1.0"
    assert (first.content, second.content) == (b"/one", b"/two")
    assert server.accepted == 2


async def test_obs_fold(make_client: ClientFactory) -> None:
    """An obs-folded header value is unfolded with SP (RFC 9112 section 5.2: a user agent
    MUST replace each obs-fold with SP), as httpcore (h11) does."""

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(
            b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\nContent-Length: 2\r\n\r\nok"
        )
        return True

    async with RawServer(respond) as server:
        client = make_client()
        folded = await client.get(server.url("/fold"))
        after = await client.get(server.url("/after"))

    # "one or more SP octets" (RFC 9112): h11 leaves one space, llhttp keeps the fold's own.
    assert re.fullmatch("first +second", folded.headers["x-folded"])
    assert folded.content == b"ok"
    assert after.content == b"ok"
    assert server.accepted == 1


async def test_bare_lf_line_endings(make_client: ClientFactory) -> None:
    """A response head with bare LF line endings is read correctly, or rejected.

    httpcore (h11) accepts it; RFC 9112 section 2.2 only says a recipient MAY recognize a
    single LF, so RemoteProtocolError is the documented equivalent. A misread body or a
    hang is not.
    """

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(b"HTTP/1.1 200 OK\nContent-Length: 2\nX-A: 1\n\nhi")
        return True

    response = await get_unless_refused(make_client, respond)
    if response is None:
        return
    assert response.status_code == 200
    assert response.headers["x-a"] == "1"
    assert response.content == b"hi"


async def test_transfer_encoding_not_chunked(make_client: ClientFactory) -> None:
    """A response whose Transfer-Encoding is not chunked is read until close, or rejected.

    RFC 9112 section 6.3 frames such a response body by the connection closing; httpcore
    (h11) raises RemoteProtocolError ("Only Transfer-Encoding: chunked is supported"), the
    documented equivalent. A hang or a truncated body is not.
    """

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
        await request.connection.send_pieces([b"raw ", b"bytes"])
        return False

    response = await get_unless_refused(make_client, respond)
    if response is None:
        return
    assert response.content == b"raw bytes"


async def test_head_ignores_content_length(make_client: ClientFactory) -> None:
    """HEAD with Content-Length: 1234 and no body returns promptly; the connection is reused."""

    async def respond(request: ServerRequest) -> bool:
        if request.method == "HEAD":
            await request.connection.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n"
            )
            return True
        return await echo_target(request)

    async with RawServer(respond) as server:
        client = make_client()
        with anyio.fail_after(PROMPTLY_SECONDS):
            head = await client.head(server.url("/resource"))
            get = await client.get(server.url("/resource"))

    assert head.status_code == 200
    assert head.headers["content-length"] == "1234"
    assert head.content == b""
    assert get.content == b"/resource"
    assert server.accepted == 1


async def test_bodiless_statuses(make_client: ClientFactory) -> None:
    """204 and 304 (even with Content-Length: 50) have no body; the connection is reused."""

    async def respond(request: ServerRequest) -> bool:
        if request.target == "/no-content":
            await request.connection.send(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
        elif request.target == "/not-modified":
            await request.connection.send(
                b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 50\r\n\r\n'
            )
        else:
            await echo_target(request)
        return True

    async with RawServer(respond) as server:
        client = make_client()
        with anyio.fail_after(PROMPTLY_SECONDS):
            no_content = await client.get(server.url("/no-content"))
            after_204 = await client.get(server.url("/after-204"))
            not_modified = await client.get(
                server.url("/not-modified"), headers={"If-None-Match": '"v1"'}
            )
            after_304 = await client.get(server.url("/after-304"))

    assert (no_content.status_code, no_content.content) == (204, b"")
    assert no_content.headers["x-a"] == "1"
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert not_modified.headers["etag"] == '"v1"'
    assert after_204.content == b"/after-204"
    assert after_304.content == b"/after-304"
    assert server.accepted == 1


async def test_informational_responses_are_skipped(make_client: ClientFactory) -> None:
    """100 Continue and 103 Early Hints before the final 200: the response is the 200."""

    async def respond(request: ServerRequest) -> bool:
        if request.target == "/upload":
            await request.connection.send_pieces(
                [
                    b"HTTP/1.1 100 Continue\r\n\r\n",
                    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
                    http_response(b"created", status="201 Created"),
                ]
            )
            return True
        return await echo_target(request)

    async with RawServer(respond) as server:
        client = make_client()
        response = await client.post(server.url("/upload"), content=b"payload")
        after = await client.get(server.url("/after"))

    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.content == b"created"
    assert "link" not in response.headers
    assert server.requests[0].body == b"payload"
    assert after.content == b"/after"
    assert server.accepted == 1


# --------------------------------------------------------------------------- keep-alive


async def test_keep_alive_reuses_one_connection(make_client: ClientFactory) -> None:
    """Five sequential requests to one origin use one TCP connection, then idle in the pool."""
    async with RawServer(echo_target) as server:
        client = make_client()
        bodies = [(await client.get(server.url(f"/{i}"))).content for i in range(5)]
        idle = make_client.idle_connections(client)

    assert bodies == [f"/{i}".encode() for i in range(5)]
    assert server.accepted == 1
    assert [request.connection.number for request in server.requests] == [1] * 5
    assert idle == 1


async def test_server_connection_close_header(make_client: ClientFactory) -> None:
    """After a response with Connection: close, the next request opens a new connection.

    The server leaves its socket open: the client must honour the header, not the FIN.
    """

    async def respond(request: ServerRequest) -> bool:
        headers = [("Connection", "close")] if request.target == "/first" else []
        await request.connection.send(http_response(request.target.encode(), headers=headers))
        return True

    async with RawServer(respond) as server:
        client = make_client()
        first = await client.get(server.url("/first"))
        second = await client.get(server.url("/second"))
        await wait_client_gone(server.connections[0])

    assert (first.content, second.content) == (b"/first", b"/second")
    assert server.accepted == 2
    assert [request.connection.number for request in server.requests] == [1, 2]


async def test_client_connection_close_header(make_client: ClientFactory) -> None:
    """A request sent with Connection: close is the connection's last one."""
    async with RawServer(echo_target) as server:
        client = make_client()
        first = await client.get(server.url("/first"), headers={"Connection": "close"})
        second = await client.get(server.url("/second"))
        await wait_client_gone(server.connections[0])

    assert (first.content, second.content) == (b"/first", b"/second")
    assert server.requests[0].header_values("connection") == ["close"]
    assert server.accepted == 2


async def test_server_closes_idle_connection(make_client: ClientFactory) -> None:
    """When the server closes an idle connection (no Connection: close), the next request works.

    The transport notices the dead pooled connection (httpcore checks it is not readable
    before reuse) or retries on a fresh one; either way the user sees no error.
    """

    async def respond(request: ServerRequest) -> bool:
        await echo_target(request)
        return False  # close right after answering

    async with RawServer(respond) as server:
        client = make_client()
        bodies = []
        for i in range(3):
            bodies.append((await client.get(server.url(f"/{i}"))).content)
            await anyio.sleep(0.05)

    assert bodies == [b"/0", b"/1", b"/2"]
    assert server.accepted == 3


async def test_keepalive_expiry(make_client: ClientFactory) -> None:
    """A connection idle for longer than keepalive_expiry is closed, not reused."""
    async with RawServer(echo_target) as server:
        client = make_client(keepalive_expiry=0.1)
        first = await client.get(server.url("/first"))
        await anyio.sleep(0.3)
        second = await client.get(server.url("/second"))
        # httpcore closes expired connections when the pool is next used; a timer is fine too.
        await wait_client_gone(server.connections[0])

    assert (first.content, second.content) == (b"/first", b"/second")
    assert server.accepted == 2


async def test_max_keepalive_connections(make_client: ClientFactory) -> None:
    """Three concurrent requests open three connections; only max_keepalive=1 stays pooled."""

    async def respond(request: ServerRequest) -> bool:
        await asyncio.sleep(0.2 if request.target.startswith("/slow") else 0)
        return await echo_target(request)

    async with RawServer(respond) as server:
        client = make_client(max_keepalive=1)
        bodies: dict[int, bytes] = {}

        async def fetch(i: int) -> None:
            bodies[i] = (await client.get(server.url(f"/slow/{i}"))).content

        async with anyio.create_task_group() as group:
            for i in range(3):
                group.start_soon(fetch, i)
        await server.wait_clients_gone(2)
        idle = make_client.idle_connections(client)
        after = await client.get(server.url("/after"))

    assert bodies == {i: f"/slow/{i}".encode() for i in range(3)}
    assert server.accepted == 3
    assert idle == 1
    assert after.content == b"/after"
    assert sum(connection.client_gone.is_set() for connection in server.connections) == 2


# --------------------------------------------------------------------------- requests


async def test_request_bytes(make_client: ClientFactory) -> None:
    """The server sees exactly the headers httpx built (order, case, Host with port)."""
    async with RawServer(echo_target) as server:
        client = make_client()
        response = await client.get(server.url("/h"), headers={"X-Request-Id": "abc-123"})

    seen = server.requests[0]
    assert seen.method == "GET"
    assert seen.version == "HTTP/1.1"
    assert seen.header_values("host") == [f"127.0.0.1:{server.port}"]
    sent = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in response.request.headers.raw
    ]
    assert seen.headers == sent
    assert ("X-Request-Id", "abc-123") in seen.headers
    assert seen.body == b""


@pytest.mark.parametrize("value", ["v\r\nInjected: 1", "v\nInjected: 1", "v\x00"])
async def test_header_injection_is_refused(make_client: ClientFactory, value: str) -> None:
    """A header value with a line break (or NUL) is refused, and nothing of it is sent."""
    async with RawServer(echo_target) as server:
        client = make_client()
        with pytest.raises(httpx.LocalProtocolError):
            await client.get(server.url("/h"), headers={"X-A": value})
        after = await client.get(server.url("/after"))

    assert after.content == b"/after"
    assert all(("Injected", "1") not in seen.headers for seen in server.requests)
    assert [seen.target for seen in server.requests] == ["/after"]


async def test_post_json(make_client: ClientFactory) -> None:
    """A JSON POST body reaches the server byte for byte, with its Content-Length."""
    document = {"name": "café", "values": [1, 2, 3], "nested": {"ok": True}}
    async with RawServer(echo_target) as server:
        response = await make_client().post(server.url("/json"), json=document)

    seen = server.requests[0]
    assert response.status_code == 200
    assert seen.method == "POST"
    assert json.loads(seen.body) == document
    assert seen.body == response.request.content
    assert seen.header_values("content-length") == [str(len(seen.body))]
    assert seen.header_values("content-type") == ["application/json"]


async def test_post_one_mebibyte(make_client: ClientFactory) -> None:
    """A 1 MiB body arrives intact and the connection stays usable."""
    data = os.urandom(1 << 20)
    async with RawServer(echo_target) as server:
        client = make_client()
        response = await client.put(server.url("/big"), content=data)
        after = await client.get(server.url("/after"))

    assert response.status_code == 200
    assert server.requests[0].method == "PUT"
    assert server.requests[0].header_values("content-length") == [str(1 << 20)]
    assert server.requests[0].body == data
    assert after.content == b"/after"
    assert server.accepted == 1


@pytest.mark.parametrize(
    "target",
    [
        "/a%20b?x=1&y=%2F",
        "/%7Euser/caf%C3%A9?q=%22quoted%22&empty=&flag",
        "/path;params/x?a=1&a=2",
        "/",
    ],
)
async def test_request_target(make_client: ClientFactory, target: str) -> None:
    """Paths and query strings reach the server exactly as given (no re-encoding)."""
    async with RawServer(echo_target) as server:
        response = await make_client().get(server.url(target))

    assert server.requests[0].target == target
    assert response.content == target.encode()


# --------------------------------------------------------------------------- streaming


async def test_stream_large_body(make_client: ClientFactory) -> None:
    """``client.stream`` over a 4 MiB body sent in pieces yields exactly its bytes."""
    data = os.urandom(4 << 20)
    piece = 256 * 1024

    async def respond(request: ServerRequest) -> bool:
        if request.target != "/big":
            return await echo_target(request)
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n"
        await request.connection.send(head.encode())
        for start in range(0, len(data), piece):
            await request.connection.send(data[start : start + piece])
        return True

    async with RawServer(respond) as server:
        client = make_client()
        chunks = []
        async with client.stream("GET", server.url("/big")) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
        after = await client.get(server.url("/after"))

    assert b"".join(chunks) == data
    assert after.content == b"/after"
    assert server.accepted == 1


async def test_stream_yields_before_body_complete(make_client: ClientFactory) -> None:
    """The first bytes of a streamed body reach the caller before the server sends the rest."""
    first_seen = asyncio.Event()

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        # Without streaming, this wait would time out and fail the test.
        with anyio.fail_after(PROMPTLY_SECONDS):
            await first_seen.wait()
        await request.connection.send(b"world")
        return True

    async with RawServer(respond) as server:
        client = make_client()
        received = b""
        with anyio.fail_after(PROMPTLY_SECONDS * 2):
            async with client.stream("GET", server.url()) as response:
                async for chunk in response.aiter_bytes():
                    received += chunk
                    first_seen.set()

    assert received == b"helloworld"


async def test_stream_closed_early(make_client: ClientFactory) -> None:
    """Leaving a stream after its first chunk doesn't hang; the half-read connection is
    dropped and the next request gets its own response."""
    data = os.urandom(4 << 20)
    piece = 64 * 1024

    async def respond(request: ServerRequest) -> bool:
        if request.target != "/big":
            return await echo_target(request)
        await request.connection.send(
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        )
        for start in range(0, len(data), piece):
            await request.connection.send(data[start : start + piece])
            await asyncio.sleep(0.005)
        return True

    async with RawServer(respond) as server:
        client = make_client()
        with anyio.fail_after(PROMPTLY_SECONDS):
            async with client.stream("GET", server.url("/big")) as response:
                async for first in response.aiter_bytes():
                    assert first == data[: len(first)]
                    break
        after = await client.get(server.url("/after"))
        await wait_client_gone(server.connections[0])

    assert after.content == b"/after"
    assert server.accepted == 2


# --------------------------------------------------------------------------- timeouts


async def test_read_timeout(make_client: ClientFactory) -> None:
    """A server that never answers gives ReadTimeout after about the per-request read timeout."""

    async def never_answer(request: ServerRequest) -> bool:
        await request.connection.wait_for_client_close()
        return False

    async with RawServer(never_answer) as server:
        client = make_client()  # client default: 3 s; the request's own timeout must win
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url(), timeout=httpx.Timeout(5.0, read=0.2))
        elapsed = time.monotonic() - started

    assert 0.15 <= elapsed < 1.5


async def test_read_timeout_mid_body(make_client: ClientFactory) -> None:
    """A body that stalls halfway gives ReadTimeout."""

    async def stall(request: ServerRequest) -> bool:
        await request.connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await request.connection.wait_for_client_close()
        return False

    async with RawServer(stall) as server:
        client = make_client(timeout=httpx.Timeout(5.0, read=0.2))
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url())
        elapsed = time.monotonic() - started

    assert elapsed < 1.5


async def test_read_timeout_is_per_read(make_client: ClientFactory) -> None:
    """The read timeout bounds each wait for data, not the whole response: a body trickling
    in for 0.8 s passes a 0.3 s read timeout."""
    pieces = [b"x" * 10] * 8

    async def trickle(request: ServerRequest) -> bool:
        await request.connection.send(b"HTTP/1.1 200 OK\r\nContent-Length: 80\r\n\r\n")
        await request.connection.send_pieces(pieces, pause=0.1)
        return True

    async with RawServer(trickle) as server:
        client = make_client(timeout=httpx.Timeout(5.0, read=0.3))
        response = await client.get(server.url())

    assert response.content == b"".join(pieces)


async def test_write_timeout(make_client: ClientFactory) -> None:
    """A 64 MiB upload to a server that never reads gives WriteTimeout.

    64 MiB is far beyond loopback socket buffers (a few MiB on Linux), so the write blocks.
    """

    async def never_read(connection: ServerConnection) -> None:
        await anyio.sleep(10)

    async with RawServer(raw=never_read) as server:
        client = make_client(timeout=httpx.Timeout(5.0, write=0.2))
        started = time.monotonic()
        with pytest.raises(httpx.WriteTimeout):
            await client.post(server.url(), content=b"x" * (64 << 20))
        elapsed = time.monotonic() - started

    assert elapsed < 1.5


async def test_connect_refused(make_client: ClientFactory) -> None:
    """A port with nothing listening gives ConnectError."""
    with socket.socket() as reserved:  # bound, not listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        with anyio.fail_after(PROMPTLY_SECONDS), pytest.raises(httpx.ConnectError):
            await make_client().get(f"http://127.0.0.1:{port}/")


async def test_tls_handshake_timeout(make_client: ClientFactory) -> None:
    """A server that accepts TCP but never answers the TLS handshake gives ConnectTimeout.

    httpcore counts the TLS handshake as part of connecting (connect timeout, ConnectTimeout);
    a reliable TCP-level connect timeout is not possible on loopback.
    """

    async def silent(connection: ServerConnection) -> None:
        await connection.wait_for_client_close()

    async with RawServer(raw=silent) as server:
        client = make_client(timeout=httpx.Timeout(5.0, connect=0.2))
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout):
            await client.get(server.url(scheme="https"))
        elapsed = time.monotonic() - started

    assert 0.15 <= elapsed < 1.5


# --------------------------------------------------------------------------- errors


async def test_leading_continuation_line(make_client: ClientFactory) -> None:
    """A header block starting with whitespace is rejected (h11) or read as a header (llhttp,
    lenient on folding as RFC 9112 asks of clients); either way nothing hangs or mixes up."""

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(
            b"HTTP/1.1 200 OK\r\n Folded: at the start\r\nContent-Length: 2\r\n\r\nok"
        )
        return True

    response = await get_unless_refused(make_client, respond)
    if response is None:
        return
    assert response.headers["folded"] == "at the start"
    assert response.content == b"ok"


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 abc\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBadHeaderLine\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=[
        "status-code",
        "garbage",
        "http2-status-line",
        "header-without-colon",
        "content-length-text",
        "content-length-negative",
        "content-length-conflict",
        "chunk-size",
    ],
)
async def test_malformed_response(make_client: ClientFactory, wire: bytes) -> None:
    """A malformed response gives RemoteProtocolError (the server keeps the socket open)."""

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(wire)
        await request.connection.wait_for_client_close()
        return False

    async with RawServer(respond) as server:
        with anyio.fail_after(PROMPTLY_SECONDS), pytest.raises(httpx.RemoteProtocolError):
            await make_client().get(server.url())


@pytest.mark.parametrize(
    "wire",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Le"],
    ids=["nothing", "partial-head"],
)
async def test_disconnect_before_response(make_client: ClientFactory, wire: bytes) -> None:
    """A server that closes before a complete response head gives RemoteProtocolError
    (httpcore: "Server disconnected without sending a response.")."""

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(wire)
        return False

    async with RawServer(respond) as server:
        with anyio.fail_after(PROMPTLY_SECONDS), pytest.raises(httpx.RemoteProtocolError):
            await make_client().get(server.url())


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    ],
    ids=["content-length", "chunked"],
)
async def test_disconnect_mid_body(make_client: ClientFactory, wire: bytes) -> None:
    """A server closing mid-body gives RemoteProtocolError or ReadError; the client recovers.

    httpcore raises RemoteProtocolError ("peer closed connection without sending complete
    message body"); a transport that surfaces the short read as ReadError is equivalent.
    """

    async def respond(request: ServerRequest) -> bool:
        if request.connection.number == 1:
            await request.connection.send(wire)
            return False
        return await echo_target(request)

    async with RawServer(respond) as server:
        client = make_client()
        with (
            anyio.fail_after(PROMPTLY_SECONDS),
            pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        ):
            await client.get(server.url("/broken"))
        after = await client.get(server.url("/after"))

    assert after.content == b"/after"
    assert server.accepted == 2


async def test_https_to_plain_http_port(make_client: ClientFactory) -> None:
    """https:// to a plain HTTP server fails the TLS handshake: ConnectError.

    The handshake is part of connecting in httpcore, so its failure is a ConnectError.
    """

    async def plain(connection: ServerConnection) -> None:
        await connection.reader.read(1)  # the ClientHello
        await connection.send(http_response(b"not tls", status="400 Bad Request"))

    async with RawServer(raw=plain) as server:
        with anyio.fail_after(PROMPTLY_SECONDS), pytest.raises(httpx.ConnectError):
            await make_client().get(server.url(scheme="https"))


async def test_unsupported_scheme(make_client: ClientFactory) -> None:
    """An ftp:// URL gives UnsupportedProtocol, raised by the transport itself."""
    client = make_client()
    with pytest.raises(httpx.UnsupportedProtocol):
        await client.get("ftp://127.0.0.1:1/file")


# --------------------------------------------------------------------------- TLS


async def test_https(make_client: ClientFactory, ca: trustme.CA) -> None:
    """HTTPS with the given context verifies the server, sends SNI, speaks HTTP/1.1 and
    reuses the connection."""
    sni_seen: list[str | None] = []
    context = server_ssl_context(ca, "localhost", "127.0.0.1", sni_seen=sni_seen)
    async with RawServer(echo_target, ssl_context=context) as server:
        client = make_client()
        bodies = [
            (await client.get(server.url(f"/{i}", scheme="https", host="localhost"))).content
            for i in range(3)
        ]

    assert bodies == [b"/0", b"/1", b"/2"]
    assert server.accepted == 1
    assert sni_seen == ["localhost"]
    assert server.requests[0].header_values("host") == [f"localhost:{server.port}"]
    # The server prefers h2; an HTTP/1.1 client must offer only http/1.1 or no ALPN.
    assert server.connections[0].alpn_protocol in (None, "http/1.1")


async def test_https_ip_address(make_client: ClientFactory, ca: trustme.CA) -> None:
    """HTTPS to an IP address checks the certificate's IP address entry."""
    context = server_ssl_context(ca, "127.0.0.1")
    async with RawServer(echo_target, ssl_context=context) as server:
        response = await make_client().get(server.url("/ip", scheme="https"))

    assert response.content == b"/ip"


async def test_https_untrusted_certificate(make_client: ClientFactory, ca: trustme.CA) -> None:
    """A context without the test CA rejects the server: ConnectError."""
    context = server_ssl_context(ca, "localhost", "127.0.0.1")
    async with RawServer(echo_target, ssl_context=context) as server:
        client = make_client(ssl_context=ssl.create_default_context())
        with anyio.fail_after(PROMPTLY_SECONDS), pytest.raises(httpx.ConnectError):
            await client.get(server.url(scheme="https", host="localhost"))

    assert server.requests == []


async def test_https_wrong_hostname(make_client: ClientFactory, ca: trustme.CA) -> None:
    """A trusted certificate for another name is rejected: ConnectError."""
    context = server_ssl_context(ca, "other.example")
    async with RawServer(echo_target, ssl_context=context) as server:
        with anyio.fail_after(PROMPTLY_SECONDS), pytest.raises(httpx.ConnectError):
            await make_client().get(server.url(scheme="https", host="localhost"))

    assert server.requests == []


# --------------------------------------------------------------------------- concurrency


async def test_concurrent_requests(make_client: ClientFactory) -> None:
    """50 concurrent GETs to one origin each get their own response."""
    count = 50

    async def respond(request: ServerRequest) -> bool:
        # Answer later requests sooner, so responses complete out of order.
        index = int(request.target.split("/")[2].split("?")[0])
        await asyncio.sleep((count - index) * 0.002)
        return await echo_target(request)

    async with RawServer(respond) as server:
        client = make_client()
        results: dict[int, httpx.Response] = {}

        async def fetch(index: int) -> None:
            results[index] = await client.get(server.url(f"/item/{index}?n={index}"))

        with anyio.fail_after(PROMPTLY_SECONDS * 2):
            async with anyio.create_task_group() as group:
                for index in range(count):
                    group.start_soon(fetch, index)
        idle = make_client.idle_connections(client)

    assert sorted(results) == list(range(count))
    for index, response in results.items():
        assert response.status_code == 200
        assert response.content == f"/item/{index}?n={index}".encode()
        assert response.request.url.path == f"/item/{index}"
    assert len(server.requests) == count
    assert 1 <= server.accepted <= count
    assert idle == server.accepted


async def test_cancelled_request(make_client: ClientFactory) -> None:
    """A request cancelled while waiting leaves the client usable: the next request gets
    its own response, never the late answer to the cancelled one."""

    async def respond(request: ServerRequest) -> bool:
        if request.target == "/slow":
            await asyncio.sleep(0.3)  # the answer lands while the next request waits
        return await echo_target(request)

    async with RawServer(respond) as server:
        client = make_client()
        with anyio.move_on_after(0.1) as scope:
            await client.get(server.url("/slow"))
        assert scope.cancelled_caught
        with anyio.fail_after(CANCEL_SAFE_SECONDS):
            after = await client.get(server.url("/fast"))
        # The cancelled request's connection is not put back into the pool.
        await wait_client_gone(server.connections[0])

    assert after.status_code == 200
    assert after.content == b"/fast"
    assert server.accepted == 2


async def test_aclose_closes_pooled_connections(make_client: ClientFactory) -> None:
    """``client.aclose()`` closes the idle pooled connection: the server sees EOF."""
    async with RawServer(echo_target) as server:
        client = make_client()
        for i in range(2):
            await client.get(server.url(f"/{i}"))
        assert not server.connections[0].client_gone.is_set()
        await client.aclose()
        await wait_client_gone(server.connections[0])
        idle = make_client.idle_connections(client)

    assert server.accepted == 1
    assert idle == 0


# --------------------------------------------------------------------------- per-run pools


async def test_per_run_pool_keeps_connections_for_one_run_only() -> None:
    """``per_run``: requests within one ``run_connections`` block share a connection, which the
    block's end closes; the next block connects anew; outside a block nothing is kept."""
    from synthetic_exporter.http.transport import Http11Transport, run_connections

    async with (
        RawServer(echo_target) as server,
        httpx.AsyncClient(transport=Http11Transport(per_run=True)) as client,
    ):
        for run in range(2):
            with run_connections():
                for i in range(3):
                    await client.get(server.url(f"/{run}/{i}"))
            await wait_client_gone(server.connections[run])
        outside = [await client.get(server.url(f"/outside/{i}")) for i in range(2)]

    assert [response.content for response in outside] == [b"/outside/0", b"/outside/1"]
    numbers = [request.connection.number for request in server.requests]
    assert numbers == [1, 1, 1, 2, 2, 2, 3, 4]
    assert server.accepted == 4


async def test_switching_protocols_is_refused_clearly() -> None:
    """A 101 answer (an upgrade the transport does not do) fails the request with a clear
    RemoteProtocolError instead of hanging. (httpcore hands over the raw stream instead.)"""
    from synthetic_exporter.http.transport import Http11Transport

    async def respond(request: ServerRequest) -> bool:
        await request.connection.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        await request.connection.wait_for_client_close()
        return False

    async with (
        RawServer(respond) as server,
        httpx.AsyncClient(transport=Http11Transport()) as client,
    ):
        with (
            anyio.fail_after(PROMPTLY_SECONDS),
            pytest.raises(httpx.RemoteProtocolError, match="switched protocols"),
        ):
            await client.get(server.url())
