"""Plain-value families: byte for byte what prometheus_client writes, in both formats."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from synthetic_exporter.exporter.series import Family

LABELS = ("environment", "suite", "test")
ODD = ("prod", 'we"ird\\name\nnext', "zeta")
BUCKETS = (0.005, 0.25, 1.0, 10.0)


def render_families(families: list[Family], openmetrics: bool) -> bytes:
    """Render families on their own (as a suite's block is), without the OpenMetrics EOF."""
    return b"".join(f.header(openmetrics) + f.samples() for f in families)


class _Families(Collector):
    def __init__(self, families: list[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter([f.metric() for f in self.families])


@pytest.fixture(autouse=True)
def _no_created_samples() -> Iterator[None]:
    """The agent disables ``_created`` samples (as ``serve`` does)."""
    from prometheus_client import disable_created_metrics, enable_created_metrics

    disable_created_metrics()  # type: ignore[no-untyped-call]
    yield
    enable_created_metrics()  # type: ignore[no-untyped-call]


def both() -> tuple[CollectorRegistry, list[Family]]:
    """The same series, once in prometheus_client objects, once in families."""
    registry = CollectorRegistry()
    gauge = Gauge("x_last_run_timestamp_seconds", "When \\ it ran\nlast", LABELS, registry=registry)
    counter = Counter("x_runs_total", 'Runs "by" result', (*LABELS, "result"), registry=registry)
    histogram = Histogram(
        "x_duration_seconds", "Durations", LABELS, buckets=BUCKETS, registry=registry
    )
    Gauge("x_unused", "Never set", LABELS, registry=registry)
    families = [
        Family(
            name="x_last_run_timestamp_seconds",
            kind="gauge",
            help="When \\ it ran\nlast",
            labels=LABELS,
        ),
        Family(
            name="x_runs_total", kind="counter", help='Runs "by" result', labels=(*LABELS, "result")
        ),
        Family(
            name="x_duration_seconds",
            kind="histogram",
            help="Durations",
            labels=LABELS,
            buckets=BUCKETS,
        ),
        Family(name="x_unused", kind="gauge", help="Never set", labels=LABELS),
    ]
    g, c, h, _ = families
    for key in (ODD, ("prod", "a", "b")):
        gauge.labels(*key).set(1764000000.123)
        g.set(key, 1764000000.123)
        counter.labels(*key, "passed").inc()
        c.inc((*key, "passed"))
        counter.labels(*key, "failed")
        c.touch((*key, "failed"))
        for value in (0.005, 0.3, 12.0, 0.0):
            histogram.labels(*key).observe(value)
            h.observe(key, value)
    return registry, families


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_families_render_exactly_as_prometheus_client(openmetrics: bool) -> None:
    registry, families = both()
    expected = (generate_openmetrics if openmetrics else generate_latest)(registry)
    rendered = render_families(families, openmetrics)
    assert rendered + (b"# EOF\n" if openmetrics else b"") == expected


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_families_as_metrics_give_the_same_exposition(openmetrics: bool) -> None:
    registry, families = both()
    through = CollectorRegistry()
    through.register(_Families(families))
    encode = generate_openmetrics if openmetrics else generate_latest
    assert encode(through) == encode(registry)


def test_histogram_buckets_include_their_upper_bound() -> None:
    family = Family(name="h_seconds", kind="histogram", help="h", labels=("a",), buckets=(0.1, 1.0))
    for value in (0.1, 0.10001, 1.0, 5.0):
        family.observe(("x",), value)
    registry = CollectorRegistry()
    registry.register(_Families([family]))
    bucket = {
        le: registry.get_sample_value("h_seconds_bucket", {"a": "x", "le": le})
        for le in ("0.1", "1.0", "+Inf")
    }
    assert bucket == {"0.1": 1, "1.0": 3, "+Inf": 4}
    assert registry.get_sample_value("h_seconds_sum", {"a": "x"}) == pytest.approx(6.20001)


def test_bad_definitions_and_updates_are_refused() -> None:
    with pytest.raises(ValueError, match="_total"):
        Family(name="runs", kind="counter", help="no suffix", labels=())
    counter = Family(name="runs_total", kind="counter", help="runs", labels=("a",))
    with pytest.raises(ValueError, match="only go up"):
        counter.inc(("x",), -1)
    with pytest.raises(ValueError, match="expected labels"):
        counter.inc(("x", "y"))
