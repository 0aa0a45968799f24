"""Limits on what an HTTP client may cost the agent: header and body size, time, connections.

Two layers, both ahead of authentication:

- :class:`LimitedHttpProtocol`, uvicorn's httptools protocol with limits at the connection
  level: request line and headers of at most ``header_bytes`` (431 and close: bytes beyond the
  limit are never handed to the parser, which would buffer them); a request must be read
  within ``read_timeout`` of the connection being made or of the previous response ending
  (else the connection is closed); a response whose writing makes no progress for
  ``write_stall`` seconds is aborted; and at most ``connections`` connections: one more makes
  the oldest connection that is still waiting for (or reading) a request close, so that a flood
  of idle or slow clients cannot lock out Prometheus and the probes.
- :class:`BodyLimit`, ASGI middleware that refuses bodies above ``body_bytes`` (413): the
  declared ``Content-Length`` up front, a streamed body as it is counted.
- :class:`Turns`, ASGI middleware in the agent's app: at most a few GET and HEAD requests at
  once, so that answers do not hold up the scheduler's timers in bursts.

:func:`raise_fd_limit` raises the soft open-files limit to the hard one at start-up.
"""

from __future__ import annotations

import itertools
import resource
import time
from asyncio import TimerHandle, Transport
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
from loguru import logger
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from synthetic_exporter.app.web_config import ASGIApp, Message, Receive, Scope, Send

# Request line plus headers. nginx allows 4 x 8 KiB by default; 64 KiB is ample for any scraper,
# browser or curl, and small enough that a thousand connections cannot buffer much.
MAX_HEADER_BYTES = 64 * 1024
# From the connection (or the end of the previous response) until the request is read.
READ_TIMEOUT_SECONDS = 10.0
# uvicorn's own idle keep-alive timeout: no byte of a next request within it closes.
KEEP_ALIVE_SECONDS = 5
# A response that cannot be written further (the client reads nothing) for this long is dropped.
WRITE_STALL_SECONDS = 30.0
# Half the usual default fd limit (1,024): the other half stays for the checks' connections.
MAX_CONNECTIONS = 512
# Nothing the API takes has a body larger than this (POST /api/v1/run takes none).
MAX_BODY_BYTES = 64 * 1024
# GET and HEAD requests the agent's app handles at once (:class:`Turns`); the others wait
# their turn, in order. When a shared render finishes, the scrapes waiting for it resume in the
# same turn of the event loop; a cap keeps such a burst short, so that the scheduler's timers
# are not held up behind fifty responses.
MAX_ACTIVE_REQUESTS = 8
# When the request came (before waiting for its turn), in the request's state.
RECEIVED_AT = "received_at"


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one server applies (the module's constants by default)."""

    header_bytes: int = MAX_HEADER_BYTES
    read_timeout: float = READ_TIMEOUT_SECONDS
    keep_alive: int = KEEP_ALIVE_SECONDS
    write_stall: float = WRITE_STALL_SECONDS
    connections: int = MAX_CONNECTIONS
    body_bytes: int = MAX_BODY_BYTES


def current_limits() -> Limits:
    """Return the limits as the module's constants are now (tests may change them)."""
    return Limits(
        MAX_HEADER_BYTES,
        READ_TIMEOUT_SECONDS,
        KEEP_ALIVE_SECONDS,
        WRITE_STALL_SECONDS,
        MAX_CONNECTIONS,
        MAX_BODY_BYTES,
    )


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    """Return the ``uvicorn.Config`` options that apply ``limits`` (httptools, always)."""
    return {"http": protocol_for(limits), "timeout_keep_alive": limits.keep_alive}


def protocol_for(limits: Limits) -> type[LimitedHttpProtocol]:
    """Return a :class:`LimitedHttpProtocol` class that applies ``limits``."""

    class Configured(LimitedHttpProtocol):
        pass

    Configured.limits = limits
    return Configured


def _plain_response(status: bytes, text: bytes) -> bytes:
    return b"".join(
        [
            b"HTTP/1.1 ",
            status,
            b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ",
            str(len(text)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            text,
        ]
    )


HEADERS_TOO_LARGE = _plain_response(
    b"431 Request Header Fields Too Large", b"Request line and headers too large.\n"
)


_WAIT_ORDER = itertools.count()


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header, time and connection limits.

    A connection is *waiting* while every request it sent has been answered: from the start,
    and again from the end of each response (or from the end of reading a request answered
    early). Waiting connections have a deadline (``read_timeout``) and are the ones evicted
    when a new connection exceeds the cap, oldest first.
    """

    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading_headers = True  # the next bytes belong to a request line or headers
        self.header_bytes = 0
        self.requests_read = 0
        self.responses_done = 0
        self.waiting_since: int | None = None  # order in which waiting connections began to wait
        self.read_timer: TimerHandle | None = None
        self.write_timer: TimerHandle | None = None

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        """Admit the connection (evicting the oldest waiting one at the cap), start its clock."""
        super().connection_made(transport)
        if not self._admit():
            transport.close()
            return
        self._update_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the timers, then let uvicorn clean up."""
        self._cancel_read_timer()
        self.waiting_since = None
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; the parser gets at most ``header_bytes`` of request line and headers."""
        if not self.reading_headers:
            super().data_received(data)
            return
        room = self.limits.header_bytes - self.header_bytes
        if len(data) <= room:
            self.header_bytes += len(data)
            super().data_received(data)
            return
        self.header_bytes += room
        if room:
            super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self.reading_headers:
            self.transport.write(HEADERS_TOO_LARGE)
            self.transport.close()
            return
        self.data_received(data[room:])  # the headers ended within the limit: parse the rest

    def on_headers_complete(self) -> None:
        """Stop counting header bytes."""
        self.reading_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """Count a request read: what follows is the next request's headers."""
        self.reading_headers = True
        self.header_bytes = 0
        self.requests_read += 1
        super().on_message_complete()
        self._update_waiting()

    def on_response_complete(self) -> None:
        """Count a response sent: wait for the next request (unless one is already read)."""
        self.responses_done += 1
        super().on_response_complete()
        self._update_waiting()

    def pause_writing(self) -> None:
        """Give a client that stopped reading ``write_stall`` seconds to resume."""
        super().pause_writing()
        if self.write_timer is None:
            self.write_timer = self.loop.call_later(self.limits.write_stall, self._stalled)

    def resume_writing(self) -> None:
        """Stop the stall timer: the client reads again."""
        super().resume_writing()
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None

    def _admit(self) -> bool:
        """Return whether this new connection may stay, closing an older waiting one if needed."""
        if len(self.connections) <= self.limits.connections:
            return True
        live = [
            c
            for c in self.connections
            if isinstance(c, LimitedHttpProtocol) and not c.transport.is_closing()
        ]
        if len(live) <= self.limits.connections:
            return True
        waiting = [c for c in live if c is not self and c.waiting_since is not None]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.waiting_since or 0)
        oldest.transport.close()
        return True

    def _update_waiting(self) -> None:
        """Start (or restart) the read deadline while waiting for a request; else stop it."""
        self._cancel_read_timer()
        if self.transport.is_closing() or self.requests_read > self.responses_done:
            self.waiting_since = None
            return
        self.waiting_since = next(_WAIT_ORDER)  # uvloop's clock ticks by the loop iteration
        self.read_timer = self.loop.call_later(self.limits.read_timeout, self._read_timed_out)

    def _cancel_read_timer(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None

    def _read_timed_out(self) -> None:
        self.read_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _stalled(self) -> None:
        self.write_timer = None
        self.transport.abort()  # close() would wait for the unread response to drain


class Turns:
    """ASGI middleware: at most ``limit`` GET and HEAD requests in the app at once.

    The others wait in order; every request's state gets ``received_at`` (``time.monotonic``),
    when it came. Other methods (``POST /api/v1/run`` waits for whole suite runs) do not take
    turns.
    """

    def __init__(self, app: ASGIApp, limit: int | None = None) -> None:
        self.app = app
        self.limit = MAX_ACTIVE_REQUESTS if limit is None else limit
        self.turns: anyio.Semaphore | None = None  # made in the event loop, at first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stamp the request, then run it in its turn."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})[RECEIVED_AT] = time.monotonic()
        if scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if self.turns is None:
            self.turns = anyio.Semaphore(self.limit, fast_acquire=True)
        async with self.turns:
            await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """A request body exceeds the limit."""


class BodyLimit:
    """ASGI middleware: request bodies of at most ``max_bytes``, else 413 and close.

    A request with a body (a ``Content-Length`` above 0, or ``Transfer-Encoding``) is refused
    at once when its declared length is too large; otherwise its body is read here (bounded)
    and replayed to the app, so that no layer behind this one, authentication included, ever
    sees more than ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = MAX_BODY_BYTES if max_bytes is None else max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass requests within the limit on; answer 413 to the others."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        try:
            body = await self._read(receive)
        except BodyTooLarge:
            await self._refuse(send)
            return
        if body is None:
            return  # the client went away
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """Return the whole body (``None`` if the client disconnected)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, send: Send) -> None:
        text = f'{{"error":"request body larger than {self.max_bytes} bytes"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(text)).encode()),
                    (b"connection", b"close"),  # the rest of the body is not read
                ],
            }
        )
        await send({"type": "http.response.body", "body": text})


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that gives ``body`` once, then the original's messages."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# When the hard limit is unlimited (not on Linux, where it is bounded by fs.nr_open).
UNLIMITED_FD_TARGET = 65_536


def raise_fd_limit() -> int:
    """Raise the soft open-files limit (RLIMIT_NOFILE) to the hard one; return the soft limit.

    Each HTTP connection, served or made by a check, holds a file descriptor; the usual soft
    default (1,024) is far below what the hard limit allows.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_FD_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            logger.warning(f"open files limit stays {soft}: {exc}")
            return soft
        logger.info(f"open files limit raised from {soft} to {target}")
        return target
    logger.info(f"open files limit {soft}")
    return soft
