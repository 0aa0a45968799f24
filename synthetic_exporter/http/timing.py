"""Instrumented HTTP: where each request's time went, recorded into the running test's result.

Phases (seconds, each only when it happened), marked by the transport
(:mod:`synthetic_exporter.http.transport`; for HTTP/2 targets, httpcore's trace hook and
:mod:`synthetic_exporter.http.http2_backend`):

- ``resolve``: name resolution (``getaddrinfo``; none for an IP address); through a proxy, the
  proxy's name;
- ``proxy``: through a proxy only: the TCP handshake with the proxy and the ``CONNECT`` round
  trip (the proxy resolving and reaching the target); there is then no ``connect``;
- ``connect``: the TCP handshake;
- ``tls``: the TLS handshake;
- ``processing``: from the request sent to the response head received (upload, server time
  and the first byte back);
- ``transfer``: from the response head to the body's last byte received.

A request on a pooled connection has only ``processing`` and ``transfer``. The request's
``duration_seconds`` runs from the transport being called to the response being closed; the
phases add up to it but for the transport's and httpx's own work (see the docs).
"""

from __future__ import annotations

import calendar
import contextvars
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from synthetic_exporter.core.results import PHASES, RequestRecord
from synthetic_exporter.http.cdn import cdn_headers, classify
from synthetic_exporter.http.network import ip_version

_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}
Sink = Callable[["RequestTimer"], None]

# The running test's request sink; the runner sets it around each test function.
CURRENT_SINK: contextvars.ContextVar[Sink | None] = contextvars.ContextVar(
    "synthetic_sink", default=None
)
# The request being sent, so that the network backend can report resolution time into it.
ACTIVE_REQUEST: contextvars.ContextVar[RequestTimer | None] = contextvars.ContextVar(
    "synthetic_request", default=None
)

# trace event -> (phase, "start" | "end")
EVENTS = {
    "connection.connect_tcp.started": ("connect", "start"),
    "connection.connect_tcp.complete": ("connect", "end"),
    "connection.start_tls.started": ("tls", "start"),
    "connection.start_tls.complete": ("tls", "end"),
    "http11.send_request_headers.started": ("processing", "start"),
    "http2.send_request_headers.started": ("processing", "start"),
    "http11.receive_response_headers.complete": ("processing", "end"),
    "http2.receive_response_headers.complete": ("processing", "end"),
    "http11.receive_response_body.started": ("transfer", "start"),
    "http2.receive_response_body.started": ("transfer", "start"),
    "http11.receive_response_body.complete": ("transfer", "end"),
    "http2.receive_response_body.complete": ("transfer", "end"),
}


@dataclass(slots=True)
class RequestTimer:
    """Collects one request's phase clocks, TLS details and response headers.

    Only clocks are read while the request runs (inside the check's own clock); redacting the
    path and the error and reading the CDN headers wait for :meth:`record`, which the runner
    calls after the test.
    """

    target: str
    method: str
    url: httpx.URL
    redact: Callable[[str], str]
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)
    marks: dict[str, float] = field(default_factory=dict)
    resolve_seconds: float | None = None
    status: int | None = None
    headers: httpx.Headers | None = None
    tls_version: str = ""
    cert_not_after: float | None = None
    error: str = ""
    ended: float | None = None
    span_id: str = ""
    remote_address: str = ""

    def body_failed(self, exc: Exception) -> None:
        """Keep the error that ended reading the response body (the first one)."""
        if not self.error:
            self.error = f"{type(exc).__name__}: {exc}"

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """Take one httpcore trace event."""
        now = time.monotonic()
        mark = EVENTS.get(event)
        if mark is not None:
            self.marks.setdefault(f"{mark[0]}.{mark[1]}", now)
        if event == "connection.connect_tcp.complete":  # a new connection (never a proxy's)
            stream = info.get("return_value")
            address = stream.get_extra_info("server_addr") if stream is not None else None
            if isinstance(address, tuple) and address:
                self.remote_address = str(address[0])
        if event == "connection.start_tls.complete":
            stream = info.get("return_value")
            self.tls_details(stream.get_extra_info("ssl_object") if stream is not None else None)

    def tls_details(self, ssl_object: object, peercert: object = None) -> None:
        """Keep the TLS version and certificate expiry of a handshake's ``ssl_object``.

        ``peercert``: the certificate as the event loop already parsed it (its transport's
        ``peercert``), so that it is not parsed twice inside the test's clock.
        """
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            return
        self.tls_version = ssl_object.version() or ""
        cert = peercert if isinstance(peercert, dict) else ssl_object.getpeercert()
        not_after = (cert or {}).get("notAfter")
        if isinstance(not_after, str):
            self.cert_not_after = cert_time(not_after)

    def phases(self) -> dict[str, float]:
        """Return the phases that happened, in order."""
        found: dict[str, float] = {}
        if self.resolve_seconds is not None:
            found["resolve"] = self.resolve_seconds
        for phase in PHASES[1:]:
            start, end = self.marks.get(f"{phase}.start"), self.marks.get(f"{phase}.end")
            if start is not None and end is not None:
                found[phase] = max(end - start, 0.0)
        return {phase: round(seconds, 6) for phase, seconds in found.items()}

    def record(self) -> RequestRecord:
        """Return the finished request's record."""
        end = self.ended if self.ended is not None else time.monotonic()
        cache, pop = classify(cdn_headers(self.headers.raw if self.headers is not None else []))
        return RequestRecord(
            target=self.target,
            method=self.method,
            path=self.redact(self.url.path),
            status=self.status,
            duration_seconds=round(end - self.started, 6),
            phases=self.phases(),
            cache=cache,
            pop=pop,
            tls_version=self.tls_version,
            cert_not_after=self.cert_not_after,
            error=self.redact(self.error),
            started_at=self.started_at,
            span_id=self.span_id,
            remote_address=self.remote_address,
            ip_family=ip_version(self.remote_address),
        )


class HookedStream(httpx.AsyncByteStream):
    """A response body that calls ``after_close`` once it is closed (the agent's transport's).

    ``after_error`` is called with the error that ended reading it, if one did.
    """

    after_close: Callable[[], None] | None = None
    after_error: Callable[[Exception], None] | None = None


def cert_time(text: str) -> float:
    """Return a certificate time as OpenSSL writes it (``Jun  1 12:00:00 2027 GMT``) in seconds.

    What :func:`ssl.cert_time_to_seconds` returns, without its ``strptime`` (60 µs a call,
    inside the test's clock); anything else is left to it.
    """
    try:
        month, day, clock, year, zone = text.split()
        hour, minute, second = clock.split(":")
        if zone != "GMT":
            raise ValueError(zone)
        fields = (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    except (KeyError, ValueError):
        return float(ssl.cert_time_to_seconds(text))
    return float(calendar.timegm(fields))
