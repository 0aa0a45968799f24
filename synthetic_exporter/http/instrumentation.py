"""The instrumented httpx transport: times every request and attributes it to a target and a CDN.

The phases and the request record are :mod:`synthetic_exporter.http.timing`'s; this transport
wraps the one that sends the request (ours, :mod:`synthetic_exporter.http.transport`, or the
HTTP/2 path's, :mod:`synthetic_exporter.http.http2_backend`) and finishes each record when its
response is closed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import httpx

from synthetic_exporter.http.timing import (
    ACTIVE_REQUEST,
    CURRENT_SINK,
    HookedStream,
    RequestTimer,
)
from synthetic_exporter.http.tracecontext import CURRENT_TRACE, HEADER, TraceParent, new_span_id
from synthetic_exporter.http.tracecontext import parse as parse_traceparent
from synthetic_exporter.http.transport import Http11Transport


class _ClosingStream(httpx.AsyncByteStream):
    """Wraps a response body to finish the request's record when the response is closed."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        on_close: Callable[[], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self.inner = inner
        self.on_close = on_close
        self.on_error = on_error
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                yield chunk
        except Exception as exc:
            self.on_error(exc)
            raise

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            if not self.closed:
                self.closed = True
                self.on_close()


def _trace(request: httpx.Request) -> str:
    """Add the running test's ``traceparent`` to ``request``; return the span id it carries.

    A check's own ``traceparent`` is kept (its span id returned, if valid); outside a test run
    nothing is added and the span id is empty.
    """
    own = request.headers.get(HEADER)
    if own is not None:
        parsed = parse_traceparent(own)
        return parsed.span_id if parsed is not None else ""
    trace_id = CURRENT_TRACE.get()
    if trace_id is None:
        return ""
    span_id = new_span_id()
    request.headers[HEADER] = TraceParent(trace_id, span_id).header()
    return span_id


class InstrumentedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that times every request and attributes it to a target and a CDN."""

    def __init__(
        self,
        target: str,
        inner: httpx.AsyncBaseTransport,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        # Ours (http.transport) marks the phases itself; others (the HTTP/2 path's, on
        # httpcore) report them through httpcore's trace hook.
        self.traced = not isinstance(inner, Http11Transport)
        self.prepare = inner.prepare if isinstance(inner, Http11Transport) else None
        self.target = target
        self.inner = inner
        self.redact = redact

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request with a trace hook; record it into the running test, if any.

        During a test run (and its cleanups) the request carries a ``traceparent`` header:
        the run's trace id and a new span id, unless the check set its own.
        """
        span_id = _trace(request)
        sink = CURRENT_SINK.get()
        if sink is None:
            return await self.inner.handle_async_request(request)
        if self.prepare is not None:  # client set-up (the TLS context) before the clock starts
            self.prepare(request)
        timer = RequestTimer(self.target, request.method, request.url, self.redact)
        timer.span_id = span_id
        if self.traced:
            request.extensions = {**request.extensions, "trace": timer.trace}
        token = ACTIVE_REQUEST.set(timer)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as exc:
            timer.ended = time.monotonic()
            timer.error = f"{type(exc).__name__}: {exc}"
            sink(timer)
            raise
        finally:
            ACTIVE_REQUEST.reset(token)
        timer.status = response.status_code
        timer.headers = response.headers

        def finish() -> None:
            timer.ended = time.monotonic()
            sink(timer)

        if isinstance(response.stream, HookedStream):  # one layer less inside the check's clock
            response.stream.after_close = finish
            response.stream.after_error = timer.body_failed
        else:
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _ClosingStream(response.stream, finish, timer.body_failed)
        return response

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.inner.aclose()
