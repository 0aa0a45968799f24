"""W3C Trace Context: the ``traceparent`` header every request of a test run carries.

A test run has one trace id (32 lowercase hex digits); each request a span id (16). The runner
sets :data:`CURRENT_TRACE` around a test run; the instrumented transport adds
``traceparent: 00-<trace id>-<span id>-01`` to each request made while it is set (see
https://www.w3.org/TR/trace-context/). A request that already has a ``traceparent`` keeps it.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from dataclasses import dataclass

HEADER = "traceparent"
VERSION = "00"
SAMPLED = "01"
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")

# The running test run's trace id; the runner sets it around a test's attempts and cleanups.
CURRENT_TRACE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "synthetic_trace", default=None
)


@dataclass(frozen=True, slots=True)
class TraceParent:
    """The fields of a ``traceparent`` header."""

    trace_id: str
    span_id: str
    flags: str = SAMPLED

    def header(self) -> str:
        """Return the header's value (version 00)."""
        return f"{VERSION}-{self.trace_id}-{self.span_id}-{self.flags}"


def _random_hex(size: int) -> str:
    """Return ``size`` random bytes as lowercase hex, never all zeros (an invalid id)."""
    while True:
        value = secrets.token_hex(size)
        if value.strip("0"):
            return value


def new_trace_id() -> str:
    """Return a random trace id: 32 lowercase hex digits, not all zeros."""
    return _random_hex(16)


def new_span_id() -> str:
    """Return a random span id: 16 lowercase hex digits, not all zeros."""
    return _random_hex(8)


def parse(value: str) -> TraceParent | None:
    """Return the fields of a ``traceparent`` value, or None if it is not a valid one.

    Version ``ff`` and all-zero ids are invalid; a later version may carry more fields after
    the four of version 00, which are read.
    """
    value = value.strip()
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or not trace_id.strip("0") or not span_id.strip("0"):
        return None
    if len(value) > match.end() and (version == VERSION or value[match.end()] != "-"):
        return None
    return TraceParent(trace_id, span_id, flags)
