"""One HTTP/1.1 connection of the transport: responses parsed by llhttp as the bytes arrive.

:class:`Connection` is an asyncio protocol that feeds a response's bytes to llhttp
(``httptools``, in C) and wakes the waiting reader; the response's phase clocks (head received,
last byte received) are read there, where the bytes arrive, not through trace callbacks.
Reading pauses while more than ``READ_BUFFER_LIMIT`` of a body waits for the reader.
:class:`ResponseBody` is the response's stream: it reads the body from its connection, and
closing it gives the connection back.

Opening connections, sending requests and keeping idle connections are the work of
:mod:`synthetic_exporter.http.transport` and :mod:`synthetic_exporter.http.pool`, which use
this module (it imports neither). A connection that was idle in the pool and dies before any
byte of the response arrived raises :class:`Closed`, which the transport retries once, for
idempotent methods only.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol, cast

import anyio
import httptools
import httpx

from synthetic_exporter.http.network import NetworkOptions
from synthetic_exporter.http.timing import HookedStream

Origin = tuple[str, str, int]

# Stop reading from the socket while this much of a body waits for the reader.
READ_BUFFER_LIMIT = 256 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
NO_OPTIONS = NetworkOptions()


class Closed(Exception):
    """A pooled connection died before the response started (retryable)."""


class Keeper(Protocol):
    """Where a connection goes back when its response is done: the transport's pool.

    That is a :class:`~synthetic_exporter.http.pool.Pool`, named here by the one method used,
    since the pool module imports this one.
    """

    def put(self, connection: Connection, /) -> None:
        """Keep ``connection`` for reuse, or close it."""


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: parses responses as bytes arrive and wakes the waiting reader."""

    def __init__(self, origin: Origin, network: NetworkOptions = NO_OPTIONS) -> None:
        self.origin = origin
        self.network = network
        self.remote_address = ""  # the address connected to (empty through a proxy)
        self.pool: Keeper | None = None  # where it goes back to when its response is done
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
            raise Closed()
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
                raise Closed()
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
