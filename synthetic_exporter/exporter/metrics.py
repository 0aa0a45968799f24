"""Prometheus metrics: the ``synthetic_`` contract (docs/metrics.md), fed by results only.

:class:`Metrics` is a runner :class:`~synthetic_exporter.engine.runner.Listener`: it turns immutable
results into series and never calls the runner.

The exposition is cached per suite: each suite's series are plain values
(:mod:`synthetic_exporter.exporter.series`, written byte for byte as prometheus_client would), whose
rendered text is kept and re-rendered only after that suite's series change. A scrape renders
the agent's own few series (prometheus_client), re-renders the suites that changed since the
last scrape, and joins the cached blocks family by family, in a worker thread
(:meth:`Metrics.render_off_loop`), so that a scrape costs little and never runs on the event
loop while tests are timed. The injected registry still presents everything (merged on
demand), for tests and for any other consumer.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

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
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.results import Outcome, SuiteResult, TestResult
from synthetic_exporter.exporter.exposition_cache import GZIP_LEVEL, ExpositionCache
from synthetic_exporter.exporter.families import (
    SUITE_BUCKETS,
    TEST_BUCKETS,
    CachedFamilies,
    MetricsOptions,
    SuiteSeries,
    TargetSeries,
)
from synthetic_exporter.exporter.series import ExemplarLabels, exemplar_labels

__all__ = [
    "LAG_BUCKETS",
    "SUITE_BUCKETS",
    "TEST_BUCKETS",
    "BrowserStats",
    "Metrics",
    "MetricsOptions",
    "render_registry",
    "render_registry_off_loop",
]

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Label names the metrics themselves use; a constant label may not take one of them.
OWN_LABELS = frozenset(
    {"suite", "test", "result", "version", "target", "phase", "code", "cache", "pop", "vital"}
)
OPENMETRICS = "application/openmetrics-text"
EOF_LINE = b"# EOF\n"

M = TypeVar("M", bound=MetricWrapperBase)


@dataclass(frozen=True, slots=True)
class _Definer:
    """Defines metrics on one registry, the constant label names first."""

    registry: CollectorRegistry
    constant: tuple[str, ...]

    def gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, (*self.constant, *labels), registry=self.registry)

    def counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, (*self.constant, *labels), registry=self.registry)

    def histogram(
        self, name: str, documentation: str, buckets: tuple[float, ...], *labels: str
    ) -> Histogram:
        names = (*self.constant, *labels)
        return Histogram(name, documentation, names, registry=self.registry, buckets=buckets)


class _MergedSuites(Collector):
    """Presents every suite's and target's families as one set (the slow, general path)."""

    def __init__(self, holders: Callable[[], list[CachedFamilies]]) -> None:
        self.holders = holders

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for series in self.holders():
            for family in (f.metric() for f in series.families):
                into = merged.get(family.name)
                if into is None:
                    into = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = into
                into.samples.extend(family.samples)
        yield from merged.values()


class _ReadCounter(Collector):
    """A counter whose value is read at scrape time from whoever keeps it (a thread's count)."""

    def __init__(self, name: str, documentation: str, constant: Mapping[str, str]) -> None:
        self.name, self.documentation, self.constant = name, documentation, dict(constant)
        self.read: Callable[[], int] = lambda: 0

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=list(self.constant))
        family.add_metric(list(self.constant.values()), self.read())
        yield family


class BrowserStats(Protocol):
    """What the browser pool tells about itself (``BrowserPool.stats()``)."""

    @property
    def processes(self) -> int:
        """Processes of the browser's tree."""
        ...

    @property
    def memory_bytes(self) -> int:
        """Resident memory of the browser's process tree."""
        ...

    @property
    def open_contexts(self) -> int:
        """Browser contexts open (one per running browser test)."""
        ...

    @property
    def restarts(self) -> int:
        """Times the browser was killed and started again."""
        ...


class _BrowserCollector(Collector):
    """The browser pool's processes, memory, contexts and restarts, read at scrape time."""

    def __init__(self, read: Callable[[], BrowserStats], constant: Mapping[str, str]) -> None:
        self.read, self.constant = read, dict(constant)

    def collect(self) -> Iterator[Metric]:
        stats = self.read()
        names, values = list(self.constant), list(self.constant.values())
        for name, documentation, value in (
            (
                "processes",
                "Processes of the shared browser (0 until a page opens)",
                stats.processes,
            ),
            (
                "memory_bytes",
                "Proportional resident memory (PSS) of the browser's processes, summed",
                stats.memory_bytes,
            ),
            (
                "contexts",
                "Browser contexts open (one per running browser test)",
                stats.open_contexts,
            ),
        ):
            gauge = GaugeMetricFamily(
                f"synthetic_exporter_browser_{name}", documentation, labels=names
            )
            gauge.add_metric(values, value)
            yield gauge
        restarts = CounterMetricFamily(
            "synthetic_exporter_browser_restarts",
            "Times the browser crashed or hung and was killed and started again",
            labels=names,
        )
        restarts.add_metric(values, stats.restarts)
        yield restarts


class _Forward(Collector):
    """Presents another registry's families."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class Metrics:
    """Turns results into the ``synthetic_`` metrics; renders them with a per-suite cache.

    Example::

        registry = CollectorRegistry()
        metrics = Metrics(registry, {"environment": "prod"}, version="0.1.0")
        metrics.suites_loaded(suites, load_errors=0, default_interval=300.0)
        metrics.suite_finished(result)  # a runner Listener
        body, content_type = await metrics.render_off_loop(request.headers.get("accept"))
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        constant_labels: Mapping[str, str],
        version: str,
        options: MetricsOptions = MetricsOptions(),  # noqa: B008 (frozen, shared safely)
    ) -> None:
        clash = OWN_LABELS.intersection(constant_labels)
        if clash:
            raise ValueError(f"constant label names clash with metric labels: {sorted(clash)}")
        self._constant = dict(constant_labels)
        self._constant_values = tuple(self._constant.values())
        self._options = options
        self._suites: dict[str, SuiteSeries] = {}
        self._targets = TargetSeries(tuple(self._constant))
        self._family_headers: dict[tuple[bool, bool], list[tuple[str, bytes]]] = {}
        self._agent = CollectorRegistry(auto_describe=False)
        on = _Definer(self._agent, tuple(self._constant))
        self._build_info = on.gauge(
            "synthetic_exporter_build_info", "Agent version; always 1", "version"
        )
        self._suites_loaded = on.gauge("synthetic_exporter_suites_loaded", "Suites loaded")
        self._load_errors = on.gauge(
            "synthetic_exporter_load_errors", "Check files or suites that failed to load"
        )
        self._schedule_lag = on.histogram(
            "synthetic_exporter_schedule_lag_seconds",
            "How late runs started versus their schedule",
            LAG_BUCKETS,
        )
        self._loop_blocked = on.counter(
            "synthetic_exporter_event_loop_blocked_seconds",
            "Time the event loop was held by blocking code for longer than the watchdog's"
            " threshold (every check, scrape and probe waited)",
        )
        self._http_edge = on.counter(
            "synthetic_http_edge_responses_total",
            "Responses served by a CDN, by edge location (3-letter code) and cache status",
            "target",
            "pop",
            "cache",
        )
        self._tls_expiry = on.gauge(
            "synthetic_tls_cert_expiry_timestamp_seconds",
            "When the target's leaf certificate expires (notAfter), as last seen",
            "target",
        )
        self._child(self._build_info, version=version).set(1)
        self._child(self._loop_blocked)  # present at 0 from the start
        self._history_dropped = _ReadCounter(
            "synthetic_exporter_history_dropped_runs",
            "Suite runs not stored in the run history because its writer was behind",
            self._constant,
        )
        self._agent.register(self._history_dropped)
        ProcessCollector(registry=self._agent)
        PlatformCollector(registry=self._agent)
        GCCollector(registry=self._agent)
        registry.register(_Forward(self._agent))
        registry.register(_MergedSuites(self._holders))
        self._exposition = ExpositionCache(self.render_parts, self.changes)

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
        """Update every test and suite series from one suite result.

        Duration observations carry exemplars (OpenMetrics only): the run id, and for tests and
        their requests the test run's trace id.
        """
        series = self._series(result.suite)
        for test in result.tests:
            key = (*self._constant_values, test.suite, test.name)
            exemplar = exemplar_labels({"run_id": result.run_id, "trace_id": test.trace_id})
            series.test.record(key, test.outcome, test.duration_seconds, test.ended_at, exemplar)
            self._record_http(series, test, exemplar)
        key = (*self._constant_values, result.suite)
        run = exemplar_labels({"run_id": result.run_id})
        series.suite.record(key, result.outcome, result.duration_seconds, result.ended_at, run)
        # Janitor and listing failures are counted as they happen (cleanup_failed), in runs
        # and sweeps alike; a result adds its tests' own cleanups.
        failed_cleanups = sum(len(t.cleanup_failures) for t in result.tests)
        if failed_cleanups:
            series.cleanup_failures.inc(key, failed_cleanups)
        series.version += 1

    def _record_http(
        self, series: SuiteSeries, test: TestResult, exemplar: ExemplarLabels | None
    ) -> None:
        """Count a test's requests, their phases, edges and certificates, and storage reports.

        Phases go to the per-target histogram (or the per-test one, if asked) and, summed per
        target and phase, to the test's last-run gauges; a skipped test keeps its last ones.
        """
        per_test = series.http_phase is not None and series.http_responses is not None
        phases = series.http_phase or self._targets.http_phase
        responses = series.http_responses or self._targets.http_responses
        test_key = (*self._constant_values, test.suite, test.name)
        last: dict[tuple[str, str], float] = {}
        for request in test.requests:
            where = (
                (*test_key, request.target)
                if per_test
                else (*self._constant_values, request.target)
            )
            for phase, seconds in request.phases.items():
                phases.observe((*where, phase), seconds, exemplar, test.ended_at)
                last[request.target, phase] = last.get((request.target, phase), 0.0) + seconds
            code = str(request.status) if request.status is not None else "error"
            responses.inc((*where, code, request.cache))
            if request.pop != "none":
                edge = {"target": request.target, "pop": request.pop, "cache": request.cache}
                self._child(self._http_edge, **edge).inc()
            if request.cert_not_after is not None:
                self._child(self._tls_expiry, target=request.target).set(request.cert_not_after)
        if test.outcome is not Outcome.SKIPPED:
            series.set_last_phases(test_key, last)
        if test.requests and not per_test:
            self._targets.version += 1
        self._record_pages(series, test, test_key)
        for report in test.storage:
            where = (*self._constant_values, test.suite, report.target)
            series.storage_versions.set(where, report.object_versions)
            series.storage_markers.set(where, report.delete_markers)

    def _record_pages(
        self, series: SuiteSeries, test: TestResult, test_key: tuple[str, ...]
    ) -> None:
        """Set a test's browser gauges (a skipped test keeps its last) and count its assets."""
        if test.outcome is not Outcome.SKIPPED:
            series.browser.set_last(test_key, test.pages)
        counted = False
        for page in test.pages:
            for asset in page.assets:
                where = (*self._constant_values, asset.target, asset.pop, asset.cache)
                self._targets.browser_assets.inc(where, asset.responses)
                counted = True
        if counted:
            self._targets.version += 1

    def overrun(self, suite: str) -> None:
        """Count a run slot dropped because the suite's previous run was still going."""
        series = self._series(suite)
        series.overruns.inc((*self._constant_values, suite))
        series.version += 1

    def schedule_lag(self, seconds: float) -> None:
        """Observe how late a run started versus its schedule."""
        self._child(self._schedule_lag).observe(seconds)

    def watch_history_drops(self, read: Callable[[], int]) -> None:
        """Export the run history's count of dropped runs, read at scrape time."""
        self._history_dropped.read = read

    def watch_span_drops(self, read: Callable[[], int]) -> None:
        """Export the OTLP exporter's count of dropped spans (only when the export is on)."""
        spans = _ReadCounter(
            "synthetic_exporter_otlp_dropped_spans",
            "Spans not exported over OTLP (queue full, collector slow, down or refusing)",
            self._constant,
        )
        spans.read = read
        self._agent.register(spans)

    def watch_browser(self, read: Callable[[], BrowserStats]) -> None:
        """Export the browser pool's processes, memory, contexts and restarts, read at scrape time.

        ``read`` runs in the scrape's worker thread.
        """
        self._agent.register(_BrowserCollector(read, self._constant))

    def loop_blocked(self, seconds: float) -> None:
        """Count a block of the event loop that the watchdog reported."""
        self._child(self._loop_blocked).inc(seconds)

    def cleanup_failed(self, suite: str, count: int = 1) -> None:
        """Count clean-ups that failed outside a suite run (the ledger's sweeps)."""
        series = self._series(suite)
        series.cleanup_failures.inc((*self._constant_values, suite), count)
        series.version += 1

    def cleanup_pending(self, by_suite: Mapping[str, int], suites: Iterable[str]) -> None:
        """Set the leftover resources per suite; 0 for suites with janitors (or seen) with none."""
        for suite in {*self._suites, *suites, *by_suite}:
            self.cleanup_pending_of(suite, by_suite.get(suite, 0))

    def cleanup_pending_of(self, suite: str, count: int) -> None:
        """Set one suite's leftover resources (a change only re-renders when it changed)."""
        series = self._series(suite)
        if count == 0 and series.pending_count is None and not series.has_janitors:
            return  # no series for a suite that never had anything to clean up
        if series.pending_count != count:
            series.pending.set((*self._constant_values, suite), count)
            series.pending_count = count
            series.version += 1

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """Return the exposition in the format ``accept`` asks for, and its content type."""
        parts, content_type = self.render_parts(accept)
        return b"".join(parts), content_type

    def render_parts(self, accept: str | None) -> tuple[list[bytes], str]:
        """Return :meth:`render`'s exposition in pieces, and its content type.

        The pieces are mostly the suites' cached blocks, so that a compressor can take them
        without a joined copy.
        """
        encoder, content_type = choose_encoder(accept or "")
        openmetrics = content_type.startswith(OPENMETRICS)
        agent = encoder(self._agent).removesuffix(EOF_LINE)
        holders = self._holders()
        samples: dict[str, list[bytes]] = {name: [] for name, _ in self._headers(openmetrics)}
        for series in holders:
            for name, lines in series.blocks(openmetrics):
                samples[name].append(lines)
        parts = [agent]
        for name, header in self._headers(openmetrics, with_suites=len(holders) > 1):
            parts.append(header)
            parts.extend(samples[name])
        if openmetrics:
            parts.append(EOF_LINE)
        return parts, content_type

    async def render_off_loop(
        self, accept: str | None, compress: bool = False, received_at: float | None = None
    ) -> tuple[bytes, str]:
        """Return :meth:`render`'s result (gzip-compressed if ``compress``), off the event loop.

        It is computed in a worker thread, once for all the scrapes that ask at about the same
        time (see :mod:`synthetic_exporter.exporter.exposition_cache`; ``received_at``: when
        the request came, on ``time.monotonic``).
        """
        return await self._exposition.get(accept, compress, received_at)

    def changes(self) -> int:
        """Return a number that grows whenever a suite's series change or a suite appears.

        A result, an overrun or a clean-up count changes a suite's series, a request the
        per-target ones; agent-level series are not counted.
        """
        suites = list(self._suites.values())
        return len(suites) + sum(series.version for series in suites) + self._targets.version

    def _suite_loaded(self, suite: Suite, default_interval: float) -> None:
        """Set one suite's interval and create its counters at 0 (clean-up ones with janitors)."""
        series = self._series(suite.name)
        key = (*self._constant_values, suite.name)
        interval = default_interval if suite.interval is None else suite.interval
        series.interval.set(key, interval)
        series.suite.precreate(key)
        series.overruns.touch(key)
        if suite.janitors:
            series.has_janitors = True
            series.cleanup_failures.touch(key)
        for test in suite.tests:
            series.test.precreate((*key, test.name))
        series.version += 1

    def _series(self, suite: str) -> SuiteSeries:
        """Return a suite's series, made at first use."""
        series = self._suites.get(suite)
        if series is None:
            series = self._suites[suite] = SuiteSeries(tuple(self._constant), self._options)
        return series

    def _headers(self, openmetrics: bool, with_suites: bool = True) -> list[tuple[str, bytes]]:
        """Return the suites' and the targets' families, each once, in exposition order.

        Every suite has the same families (the options decide them), so a new one's serve;
        without suites, only the targets' families are shown, as the registry shows them.
        """
        key = (openmetrics, with_suites)
        headers = self._family_headers.get(key)
        if headers is None:
            holders: list[CachedFamilies] = [self._targets]
            if with_suites:
                holders.insert(0, SuiteSeries(tuple(self._constant), self._options))
            found = {name: header for h in holders for name, header in h.headers(openmetrics)}
            headers = self._family_headers[key] = list(found.items())
        return headers

    def _holders(self) -> list[CachedFamilies]:
        """Return every suite's series and the per-target ones, in exposition order."""
        return [*self._suites.values(), self._targets]

    def _child(self, metric: M, **labels: str) -> M:
        """Return the series of ``metric`` with the constant labels and ``labels``."""
        values = {**self._constant, **labels}
        return metric.labels(**values) if values else metric


def render_registry(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Return the exposition of any ``registry`` in the format ``accept`` asks for, and its type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


async def render_registry_off_loop(
    registry: CollectorRegistry, accept: str | None, compress: bool = False
) -> tuple[bytes, str]:
    """Return :func:`render_registry`'s result, computed in a worker thread, uncached.

    The body is gzip-compressed if ``compress``.
    """

    def work() -> tuple[bytes, str]:
        body, content_type = render_registry(registry, accept)
        return (gzip.compress(body, GZIP_LEVEL) if compress else body), content_type

    return await anyio.to_thread.run_sync(work)
