"""A test's HTTP requests as a waterfall: each bar placed by its start relative to the test.

Positions and widths are percentages of the span from the test's start to the end of its last
request (or of the test, if later). A bar is split into the phases that happened, in order; time
a request spent outside its measured phases (waiting for a pooled connection, for example) is
the ``other`` part at its start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from synthetic_exporter.app.charts import milliseconds
from synthetic_exporter.core.results import PHASES

LEGEND: tuple[str, ...] = ("other", *PHASES)
MIN_WIDTH = 0.3  # percent: a bar of a 1 ms request in a 10 s test stays visible


@dataclass(frozen=True, slots=True)
class Segment:
    """One phase of a bar: ``x`` and ``width`` in percent of the whole waterfall."""

    phase: str
    x: float
    width: float
    title: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WaterfallRow:
    """One request: what it was, where its bar sits, its phases and what came back."""

    label: str
    x: float
    width: float
    segments: tuple[Segment, ...]
    offset: str
    duration: str
    status: str
    cache: str
    pop: str
    tls_version: str
    cert_expiry: str
    error: str
    address: str = ""


@dataclass(frozen=True, slots=True)
class Waterfall:
    """Every request of one test, and the span (seconds) the bars are scaled to."""

    rows: tuple[WaterfallRow, ...]
    span: str


def _starts(test: Mapping[str, Any], requests: Sequence[Mapping[str, Any]]) -> list[float]:
    """Return each request's start in seconds from the test's start.

    Records without a wall-clock start (``started_at`` 0, older results) are laid end to end.
    """
    starts, cursor = [], 0.0
    for request in requests:
        start = request.get("started_at") or 0.0
        offset = start - test["started_at"] if start else cursor
        starts.append(max(offset, 0.0))
        cursor = starts[-1] + request["duration_seconds"]
    return starts


def waterfall(test: Mapping[str, Any]) -> Waterfall | None:
    """Return the waterfall of a test result (JSON form), or ``None`` when it made no request."""
    requests: Sequence[Mapping[str, Any]] = test.get("requests") or ()
    if not requests:
        return None
    starts = _starts(test, requests)
    ends = [s + r["duration_seconds"] for s, r in zip(starts, requests, strict=True)]
    span = max([*ends, test.get("duration_seconds") or 0.0]) or 1e-9
    scale = 100.0 / span
    rows = tuple(
        _row(request, start, scale) for request, start in zip(requests, starts, strict=True)
    )
    return Waterfall(rows, milliseconds(span))


def _segments(request: Mapping[str, Any], x: float, scale: float) -> tuple[Segment, ...]:
    phases: Mapping[str, float] = request.get("phases") or {}
    measured = [(p, phases[p]) for p in PHASES if phases.get(p)]
    other = max(request["duration_seconds"] - sum(s for _, s in measured), 0.0)
    segments, cursor = [], x
    for phase, seconds in [("other", other), *measured]:
        if seconds <= 0:
            continue
        width = seconds * scale
        segments.append(
            Segment(phase, round(cursor, 3), round(width, 3), f"{phase} {milliseconds(seconds)}")
        )
        cursor += width
    return tuple(segments)


def _row(request: Mapping[str, Any], start: float, scale: float) -> WaterfallRow:
    x = start * scale
    width = max(request["duration_seconds"] * scale, MIN_WIDTH)
    expiry = request.get("cert_not_after")
    return WaterfallRow(
        label=f"{request['method']} {request['target']}{request['path']}",
        x=round(min(x, 100.0 - MIN_WIDTH), 3),
        width=round(min(width, 100.0 - x) if x < 100 else MIN_WIDTH, 3),
        segments=_segments(request, x, scale),
        offset=f"+{milliseconds(start)}",
        duration=milliseconds(request["duration_seconds"]),
        status=str(request["status"]) if request.get("status") is not None else "no response",
        cache=request.get("cache", "none"),
        pop=request.get("pop", "none"),
        tls_version=request.get("tls_version") or "",
        cert_expiry=f"{datetime.fromtimestamp(expiry, UTC):%Y-%m-%d}" if expiry else "",
        error=request.get("error") or "",
        address=_address(request),
    )


def _address(request: Mapping[str, Any]) -> str:
    """Return ``IPv6 2600:9000::1``: the address that answered and its family (older: empty)."""
    address = request.get("remote_address") or ""
    family = request.get("ip_family")
    return f"IPv{family} {address}" if address and family else address
