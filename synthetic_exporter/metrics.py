"""Prometheus metrics: the ``synthetic_`` contract (docs/metrics.md), fed by results only.

:class:`Metrics` is a runner :class:`~synthetic_exporter.runner.Listener`: it turns immutable
results into series on an injected registry and never calls the runner. :func:`render` encodes a
registry for a scrape (Prometheus text or OpenMetrics, by the Accept header) and
:func:`render_off_loop` does so in a worker thread, so that a scrape never runs on the event loop
while tests are being timed. A cached exposition (re-rendered when results change rather than on
every scrape) would go here, behind :func:`render_off_loop`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import MetricWrapperBase

from synthetic_exporter.results import Outcome, SuiteResult, TestResult
from synthetic_exporter.suite import Suite

__all__ = [
    "LAG_BUCKETS",
    "SUITE_BUCKETS",
    "TEST_BUCKETS",
    "Metrics",
    "render",
    "render_off_loop",
]

TEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SUITE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Label names the metrics themselves use; a constant label may not take one of them.
OWN_LABELS = frozenset(
    {"suite", "test", "result", "version", "target", "phase", "code", "cache", "pop"}
)

M = TypeVar("M", bound=MetricWrapperBase)


@dataclass(frozen=True, slots=True)
class _ResultSeries:
    """The series one kind of result (test or suite) sets; labels include the constant ones."""

    success: Gauge
    result: Gauge
    duration: Histogram
    last_duration: Gauge
    last_run: Gauge
    last_success: Gauge
    runs: Counter

    def record(
        self, labels: Mapping[str, str], outcome: Outcome, duration: float, ended_at: float
    ) -> None:
        """Update every series from one result."""
        self.success.labels(**labels).set(1 if outcome.ok else 0)
        self._set_one_hot(labels, outcome)
        self.runs.labels(**labels, result=outcome.value).inc()
        self.last_run.labels(**labels).set(ended_at)
        if outcome.ok:
            self.last_success.labels(**labels).set(ended_at)
        if outcome is not Outcome.SKIPPED:
            self.duration.labels(**labels).observe(duration)
            self.last_duration.labels(**labels).set(duration)

    def precreate(self, labels: Mapping[str, str]) -> None:
        """Create the run counters at 0 for every result, so rates work from the first run."""
        for value in Outcome:
            self.runs.labels(**labels, result=value.value)

    def _set_one_hot(self, labels: Mapping[str, str], outcome: Outcome) -> None:
        """Set ``result`` to 1 for ``outcome`` and 0 for the others."""
        # Zero the others first: a concurrent scrape may see no 1, never two.
        for value in Outcome:
            if value is not outcome:
                self.result.labels(**labels, result=value.value).set(0)
        self.result.labels(**labels, result=outcome.value).set(1)


class Metrics:
    """Turns results into the ``synthetic_`` metrics on an injected registry.

    Example::

        registry = CollectorRegistry()
        metrics = Metrics(registry, {"environment": "prod"}, version="0.1.0")
        metrics.suites_loaded(suites, load_errors=0, default_interval=300.0)
        metrics.suite_finished(result)  # a runner Listener
        body, content_type = await render_off_loop(registry, request.headers.get("accept"))
    """

    def __init__(
        self, registry: CollectorRegistry, constant_labels: Mapping[str, str], version: str
    ) -> None:
        clash = OWN_LABELS.intersection(constant_labels)
        if clash:
            raise ValueError(f"constant label names clash with metric labels: {sorted(clash)}")
        self._registry = registry
        self._constant = dict(constant_labels)
        self._pending_suites: set[str] = set()
        self._test = self._result_series("test", TEST_BUCKETS, "suite", "test")
        self._suite = self._result_series("suite", SUITE_BUCKETS, "suite")
        self._define_suite_metrics()
        self._define_exporter_metrics()
        self._define_http_metrics()
        self._child(self._build_info, version=version).set(1)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

    def suites_loaded(
        self, suites: Mapping[str, Suite], load_errors: int, default_interval: float
    ) -> None:
        """Record the loaded suites, their intervals, and pre-create their counters at 0."""
        self._child(self._suites_loaded).set(len(suites))
        self._child(self._load_errors).set(load_errors)
        for suite in suites.values():
            self._suite_loaded(suite, default_interval)

    def test_finished(self, result: TestResult) -> None:
        """Do nothing: :meth:`suite_finished` records every test, keeping updates in one place."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Update every test and suite series from one suite result."""
        for test in result.tests:
            labels = self._labels(suite=test.suite, test=test.name)
            self._test.record(labels, test.outcome, test.duration_seconds, test.ended_at)
            self._record_http(test)
        labels = self._labels(suite=result.suite)
        self._suite.record(labels, result.outcome, result.duration_seconds, result.ended_at)
        self._cleanup_failures.labels(**labels).inc(result.cleanup_failure_count)

    def _record_http(self, test: TestResult) -> None:
        """Count a test's requests, their phases, edges and certificates, and storage reports."""
        for request in test.requests:
            where = {"suite": test.suite, "test": test.name, "target": request.target}
            for phase, seconds in request.phases.items():
                self._child(self._http_phase, **where, phase=phase).observe(seconds)
            code = str(request.status) if request.status is not None else "error"
            self._child(self._http_responses, **where, code=code, cache=request.cache).inc()
            if request.pop != "none":
                edge = {"target": request.target, "pop": request.pop, "cache": request.cache}
                self._child(self._http_edge, **edge).inc()
            if request.cert_not_after is not None:
                self._child(self._tls_expiry, target=request.target).set(request.cert_not_after)
        for report in test.storage:
            where = {"suite": test.suite, "target": report.target}
            self._child(self._storage_versions, **where).set(report.object_versions)
            self._child(self._storage_markers, **where).set(report.delete_markers)

    def overrun(self, suite: str) -> None:
        """Count a run slot dropped because the suite's previous run was still going."""
        self._overruns.labels(**self._labels(suite=suite)).inc()

    def schedule_lag(self, seconds: float) -> None:
        """Observe how late a run started versus its schedule."""
        self._child(self._schedule_lag).observe(seconds)

    def cleanup_pending(self, by_suite: Mapping[str, int], suites: Iterable[str]) -> None:
        """Set the leftover resources per suite; 0 for suites (seen before) with none."""
        self._pending_suites.update(suites, by_suite)
        for suite in sorted(self._pending_suites):
            self._pending.labels(**self._labels(suite=suite)).set(by_suite.get(suite, 0))

    def cleanup_pending_of(self, suite: str, count: int) -> None:
        """Set one suite's leftover resources."""
        self._pending_suites.add(suite)
        self._pending.labels(**self._labels(suite=suite)).set(count)

    def _suite_loaded(self, suite: Suite, default_interval: float) -> None:
        """Set one suite's interval and create its counters at 0."""
        labels = self._labels(suite=suite.name)
        interval = default_interval if suite.interval is None else suite.interval
        self._interval.labels(**labels).set(interval)
        self._suite.precreate(labels)
        self._overruns.labels(**labels)
        self._cleanup_failures.labels(**labels)
        for test in suite.tests:
            self._test.precreate(self._labels(suite=suite.name, test=test.name))

    def _labels(self, **labels: str) -> dict[str, str]:
        """Return the constant labels followed by ``labels``."""
        return {**self._constant, **labels}

    def _child(self, metric: M, **labels: str) -> M:
        """Return the series of ``metric`` with the constant labels and ``labels``."""
        values = self._labels(**labels)
        return metric.labels(**values) if values else metric

    def _names(self, *labels: str) -> tuple[str, ...]:
        """Return the label names of a metric: the constant ones first."""
        return (*self._constant, *labels)

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        """Define a gauge on the registry."""
        return Gauge(name, documentation, self._names(*labels), registry=self._registry)

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        """Define a counter on the registry."""
        return Counter(name, documentation, self._names(*labels), registry=self._registry)

    def _histogram(
        self, name: str, documentation: str, buckets: tuple[float, ...], *labels: str
    ) -> Histogram:
        """Define a histogram on the registry."""
        names = self._names(*labels)
        return Histogram(name, documentation, names, registry=self._registry, buckets=buckets)

    def _result_series(self, kind: str, buckets: tuple[float, ...], *labels: str) -> _ResultSeries:
        """Define the result series of ``kind`` ("test" or "suite")."""
        name = f"synthetic_{kind}"
        return _ResultSeries(
            success=self._gauge(
                f"{name}_success", f"1 if the last {kind} run passed or was flaky", *labels
            ),
            result=self._gauge(
                f"{name}_result", f"1 for the last {kind} result, else 0", *labels, "result"
            ),
            duration=self._histogram(
                f"{name}_duration_seconds",
                f"Duration of {kind} runs, skips excluded",
                buckets,
                *labels,
            ),
            last_duration=self._gauge(
                f"{name}_last_duration_seconds",
                f"Duration of the last {kind} run, skips excluded",
                *labels,
            ),
            last_run=self._gauge(
                f"{name}_last_run_timestamp_seconds",
                f"When the last {kind} run ended, skips included",
                *labels,
            ),
            last_success=self._gauge(
                f"{name}_last_success_timestamp_seconds",
                f"When the last passed or flaky {kind} run ended",
                *labels,
            ),
            runs=self._counter(
                f"{name}_runs_total", f"Finished {kind} runs by result", *labels, "result"
            ),
        )

    def _define_suite_metrics(self) -> None:
        """Define the per-suite metrics that are not result series."""
        self._overruns = self._counter(
            "synthetic_suite_overruns_total", "Run slots dropped: previous run still going", "suite"
        )
        self._interval = self._gauge(
            "synthetic_suite_interval_seconds", "Expected seconds between runs", "suite"
        )
        self._cleanup_failures = self._counter(
            "synthetic_cleanup_failures_total", "Cleanup and janitor calls that failed", "suite"
        )
        self._pending = self._gauge(
            "synthetic_cleanup_pending", "Leftover resources awaiting a retried clean-up", "suite"
        )

    def _define_http_metrics(self) -> None:
        """Define the metrics of instrumented requests, TLS certificates and storage checks."""
        self._http_phase = self._histogram(
            "synthetic_http_request_duration_seconds",
            "Time of each phase of checks' HTTP requests (resolve, connect, tls, processing,"
            " transfer); a phase that did not happen is not observed",
            HTTP_BUCKETS,
            "suite",
            "test",
            "target",
            "phase",
        )
        self._http_responses = self._counter(
            "synthetic_http_responses_total",
            "Checks' HTTP responses by status code (error: no response) and CDN cache status",
            "suite",
            "test",
            "target",
            "code",
            "cache",
        )
        self._http_edge = self._counter(
            "synthetic_http_edge_responses_total",
            "Responses served by a CDN, by edge location (3-letter code) and cache status",
            "target",
            "pop",
            "cache",
        )
        self._tls_expiry = self._gauge(
            "synthetic_tls_cert_expiry_timestamp_seconds",
            "When the target's leaf certificate expires (notAfter), as last seen",
            "target",
        )
        self._storage_versions = self._gauge(
            "synthetic_storage_object_versions",
            "Object versions under a storage check's prefix, as last counted",
            "suite",
            "target",
        )
        self._storage_markers = self._gauge(
            "synthetic_storage_delete_markers",
            "Delete markers under a storage check's prefix, as last counted",
            "suite",
            "target",
        )

    def _define_exporter_metrics(self) -> None:
        """Define the agent's own metrics."""
        self._build_info = self._gauge(
            "synthetic_exporter_build_info", "Agent version; always 1", "version"
        )
        self._suites_loaded = self._gauge("synthetic_exporter_suites_loaded", "Suites loaded")
        self._load_errors = self._gauge(
            "synthetic_exporter_load_errors", "Check files or suites that failed to load"
        )
        self._schedule_lag = self._histogram(
            "synthetic_exporter_schedule_lag_seconds",
            "How late runs started versus their schedule",
            LAG_BUCKETS,
        )


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Return the exposition of ``registry`` in the format ``accept`` asks for, and its type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


async def render_off_loop(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Return :func:`render`'s result, computed in a worker thread."""
    return await anyio.to_thread.run_sync(render, registry, accept)
