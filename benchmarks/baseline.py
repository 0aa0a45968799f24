"""The plain prometheus_client baseline: a registry of ordinary application series.

Light on purpose (prometheus_client only): the memory baseline process imports it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The agent's test-duration buckets (synthetic_exporter.exporter.metrics.TEST_BUCKETS), copied
# so that this module does not import the agent.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SERIES_PER_LABEL_SET = 18  # gauge 1, counter 1, histogram 13 buckets + +Inf + sum + count


def baseline_registry(series: int) -> CollectorRegistry:
    """Return a registry of about ``series`` series (one gauge, counter and histogram per label
    set ``suite``, ``test``), like an ordinary instrumented application."""
    registry = CollectorRegistry()
    labels = ("suite", "test")
    gauge = Gauge("baseline_last_seconds", "Baseline gauge", labels, registry=registry)
    counter = Counter("baseline_runs_total", "Baseline counter", labels, registry=registry)
    histogram = Histogram(
        "baseline_duration_seconds",
        "Baseline histogram",
        labels,
        registry=registry,
        buckets=BUCKETS,
    )
    for i in range(max(series // SERIES_PER_LABEL_SET, 1)):
        values = (f"suite{i // 4}", f"test{i % 4}")
        gauge.labels(*values).set(i)
        counter.labels(*values).inc()
        histogram.labels(*values).observe(0.001 * (i % 100))
    return registry
