"""The agent's metric names, rendered in-process, for tests that check names against them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from prometheus_client import CollectorRegistry

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import (
    AssetCount,
    Outcome,
    PageRecord,
    RequestRecord,
    StorageReport,
)
from synthetic_exporter.exporter.metrics import Metrics, MetricsOptions
from tests.factories import make_suite

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


DETAILED = MetricsOptions(duration_histograms=True, run_counters=True, http_per_test=True)


@dataclass(frozen=True)
class BrowserStats:
    """A browser pool's figures (``BrowserPool.stats()``)."""

    processes: int = 4
    memory_bytes: int = 250_000_000
    open_contexts: int = 1
    restarts: int = 0


@cache
def agent_registry(detailed: bool = True) -> CollectorRegistry:
    """Return a registry holding every family the agent exports, each with a sample.

    ``detailed``: with the families the ``SYNTHETIC_METRICS_*`` knobs turn on, too.
    """
    registry = CollectorRegistry()
    options = DETAILED if detailed else MetricsOptions()
    metrics = Metrics(registry, {"environment": "test"}, "0", options)
    suite = Suite("signup")

    @suite.test
    def create_customer(t: T) -> None:
        """A test for the suite to have (never run)."""

    metrics.suites_loaded({"signup": suite}, load_errors=0, default_interval=60.0)
    result = make_suite("signup", ("create_customer", Outcome.PASSED))
    request = RequestRecord(
        target="cdn",
        method="GET",
        path="/",
        status=200,
        duration_seconds=0.01,
        phases={"processing": 0.01},
        cache="Hit",
        pop="LHR",
        cert_not_after=2_000_000_000.0,
    )
    page = PageRecord(
        target="cdn",
        path="/dashboard",
        status=200,
        phases={"dns": 0.001, "ttfb": 0.05, "dom_content_loaded": 0.2, "load": 0.3},
        vitals={"fcp": 0.3, "lcp": 0.9, "tbt": 0.01},
        cls=0.02,
        requests=12,
        transfer_bytes=250_000,
        assets=(AssetCount("cdn", "LHR", "Hit", 10), AssetCount("other", "none", "none", 2)),
    )
    test = replace(
        result.tests[0],
        requests=(request,),
        storage=(StorageReport("s3", 1, 0),),
        pages=(page,),
        artifacts=("screenshot.png", "trace.zip"),
    )
    metrics.suite_finished(replace(result, tests=(test,)))
    metrics.cleanup_pending({"signup": 1}, ["signup"])
    metrics.schedule_lag(0.01)
    metrics.watch_browser(BrowserStats)
    return registry


@cache
def series_names(detailed: bool = True) -> frozenset[str]:
    """Return every family and series name the agent's exposition can have.

    ``detailed=False``: only those of the default settings (what alerts and dashboards may read).
    """
    names: set[str] = set()
    for family in agent_registry(detailed).collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return frozenset(names)
