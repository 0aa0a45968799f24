"""W3C trace context ids and the traceparent header's fields."""

from __future__ import annotations

import re

import pytest

from synthetic_exporter.http.tracecontext import (
    TraceParent,
    new_span_id,
    new_trace_id,
    parse,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_new_ids_are_lowercase_hex_of_the_right_size_and_differ() -> None:
    traces = {new_trace_id() for _ in range(100)}
    spans = {new_span_id() for _ in range(100)}
    assert len(traces) == len(spans) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) and t.strip("0") for t in traces)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s) and s.strip("0") for s in spans)


def test_a_header_round_trips() -> None:
    header = TraceParent(TRACE, SPAN).header()
    assert header == f"00-{TRACE}-{SPAN}-01"
    assert parse(header) == TraceParent(TRACE, SPAN, "01")
    assert parse(f" 00-{TRACE}-{SPAN}-00 ") == TraceParent(TRACE, SPAN, "00")


def test_a_later_version_may_carry_more_fields() -> None:
    assert parse(f"01-{TRACE}-{SPAN}-01-extra") == TraceParent(TRACE, SPAN, "01")


@pytest.mark.parametrize(
    "value",
    [
        "",
        f"00-{TRACE.upper()}-{SPAN}-01",  # uppercase is invalid
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE}-{SPAN}-01",  # forbidden version
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"01-{TRACE}-{SPAN}-01extra",
        f"00-{TRACE[:-1]}-{SPAN}-01",
        f"00_{TRACE}_{SPAN}_01",
    ],
)
def test_invalid_values_are_refused(value: str) -> None:
    assert parse(value) is None
