"""The per-suite and per-target metric families, and which detailed ones are exported.

Default families answer pass/fail, last run and latency trends per test with one series per
value (last-value gauges, current-state result gauges), and request phases per target with
one histogram per target and phase. The per-test histograms, the per-result run counters and
per-test HTTP families cost 16, 6 and 16 series per phase per test: they are exported only
when :class:`MetricsOptions` turns them on (docs/metrics.md, "Series per check").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from synthetic_exporter.core.results import Outcome, PageRecord
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.exporter.series import ExemplarLabels, Family, Key

__all__ = [
    "HTTP_BUCKETS",
    "SUITE_BUCKETS",
    "TEST_BUCKETS",
    "Block",
    "BrowserSeries",
    "CachedFamilies",
    "MetricsOptions",
    "ResultSeries",
    "SuiteSeries",
    "TargetSeries",
]

TEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SUITE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# One family of a rendered block: (name, sample lines).
Block = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class MetricsOptions:
    """The detailed families to export besides the default ones (all off by default)."""

    duration_histograms: bool = False
    """``synthetic_{test,suite}_duration_seconds``, with exemplars."""
    run_counters: bool = False
    """``synthetic_{test,suite}_runs_total{result}``, pre-created at 0."""
    http_per_test: bool = False
    """HTTP phase histogram and response counter labelled by suite and test, not per target."""

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsOptions:
        """Return the options ``SYNTHETIC_METRICS_*`` set."""
        return cls(
            duration_histograms=settings.metrics_duration_histograms,
            run_counters=settings.metrics_run_counters,
            http_per_test=settings.metrics_http_per_test,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultSeries:
    """The series one kind of result (test or suite) sets; keys hold every label's value."""

    success: Family
    result: Family
    last_duration: Family
    last_run: Family
    last_success: Family
    duration: Family | None
    runs: Family | None

    @classmethod
    def define(
        cls,
        constant: tuple[str, ...],
        kind: str,
        buckets: tuple[float, ...],
        options: MetricsOptions,
        *labels: str,
    ) -> ResultSeries:
        """Define the result series of ``kind`` ("test" or "suite")."""
        name = f"synthetic_{kind}"
        own = (*constant, *labels)

        def gauge(suffix: str, help_text: str, *more: str) -> Family:
            return Family(name=f"{name}_{suffix}", kind="gauge", help=help_text, labels=own + more)

        return cls(
            success=gauge("success", f"1 if the last {kind} run passed or was flaky"),
            result=gauge(
                "result",
                f"1, on the series of the last {kind} result only (the others do not exist)",
                "result",
            ),
            last_duration=gauge(
                "last_duration_seconds", f"Duration of the last {kind} run, skips excluded"
            ),
            last_run=gauge(
                "last_run_timestamp_seconds", f"When the last {kind} run ended, skips included"
            ),
            last_success=gauge(
                "last_success_timestamp_seconds", f"When the last passed or flaky {kind} run ended"
            ),
            duration=Family(
                name=f"{name}_duration_seconds",
                kind="histogram",
                help=f"Duration of {kind} runs, skips excluded",
                labels=own,
                buckets=buckets,
            )
            if options.duration_histograms
            else None,
            runs=Family(
                name=f"{name}_runs_total",
                kind="counter",
                help=f"Finished {kind} runs by result",
                labels=(*own, "result"),
            )
            if options.run_counters
            else None,
        )

    def families(self) -> list[Family]:
        """Return the exported families in exposition order."""
        every = [
            self.success,
            self.result,
            self.duration,
            self.last_duration,
            self.last_run,
            self.last_success,
            self.runs,
        ]
        return [family for family in every if family is not None]

    def record(
        self,
        key: Key,
        outcome: Outcome,
        duration: float,
        ended_at: float,
        exemplar: ExemplarLabels | None = None,
    ) -> None:
        """Update every series from one result; ``exemplar`` labels its duration observation."""
        self.success.set(key, 1 if outcome.ok else 0)
        # Remove the previous result's series first: a concurrent scrape may see none, never two.
        for other in Outcome:
            if other is not outcome:
                self.result.remove((*key, other.value))
        self.result.set((*key, outcome.value), 1)
        if self.runs is not None:
            self.runs.inc((*key, outcome.value))
        self.last_run.set(key, ended_at)
        if outcome.ok:
            self.last_success.set(key, ended_at)
        if outcome is not Outcome.SKIPPED:
            if self.duration is not None:
                self.duration.observe(key, duration, exemplar, ended_at)
            self.last_duration.set(key, duration)

    def precreate(self, key: Key) -> None:
        """Create the run counters (if exported) at 0 for every result, for rates from the start."""
        if self.runs is not None:
            for value in Outcome:
                self.runs.touch((*key, value.value))


class CachedFamilies:
    """Families rendered together, their text kept until one of them changes."""

    def __init__(self, families: list[Family]) -> None:
        self.families = families
        self.version = 0  # bumped after every change; the cache keeps the version it rendered
        self.cache: dict[bool, tuple[int, list[Block]]] = {}

    def headers(self, openmetrics: bool) -> list[tuple[str, bytes]]:
        """Return every family's name and HELP/TYPE lines, in exposition order."""
        return [(f.name, f.header(openmetrics)) for f in self.families]

    def blocks(self, openmetrics: bool) -> list[Block]:
        """Return the rendered families that have samples, re-rendering only after a change.

        Most of a suite's families are empty (no storage, no browser, no clean-up): leaving
        them out here halves what a render of hundreds of suites goes through.
        """
        version = self.version  # read first: a change while rendering bumps it past the cache
        cached = self.cache.get(openmetrics)
        if cached is None or cached[0] != version:
            rendered = [(f.name, f.samples(openmetrics)) for f in self.families]
            cached = (version, [block for block in rendered if block[1]])
            self.cache[openmetrics] = cached
        return cached[1]


def _http_phase(labels: tuple[str, ...]) -> Family:
    return Family(
        name="synthetic_http_request_duration_seconds",
        kind="histogram",
        help="Time of each phase of checks' HTTP requests (proxy, resolve, connect, tls,"
        " processing, transfer); a phase that did not happen is not observed",
        labels=(*labels, "phase"),
        buckets=HTTP_BUCKETS,
    )


def _http_responses(labels: tuple[str, ...]) -> Family:
    return Family(
        name="synthetic_http_responses_total",
        kind="counter",
        help="Checks' HTTP responses by status code (error: no response) and CDN cache status",
        labels=(*labels, "code", "cache"),
    )


class TargetSeries(CachedFamilies):
    """The HTTP families per target, for every suite's requests (the default).

    Also the browser pages' responses per target, edge location and cache status.
    """

    def __init__(self, constant: tuple[str, ...]) -> None:
        self.http_phase = _http_phase((*constant, "target"))
        self.http_responses = _http_responses((*constant, "target"))
        self.browser_assets = Family(
            name="synthetic_browser_asset_responses_total",
            kind="counter",
            help="Responses of browser checks' pages (documents, assets, XHR) by the target"
            " whose host served them (other: a third party), CDN edge location and cache status",
            labels=(*constant, "target", "pop", "cache"),
        )
        super().__init__([self.http_phase, self.http_responses, self.browser_assets])


class BrowserSeries:
    """A browser test's last-run gauges: its last page's phases and vitals, its pages' totals."""

    def __init__(self, constant: tuple[str, ...]) -> None:
        per_test = (*constant, "suite", "test")
        self.phase = Family(
            name="synthetic_browser_last_phase_seconds",
            kind="gauge",
            help="Navigation timing of the last page the test's last run visited in a browser,"
            " seconds per phase; a phase that did not happen has no series",
            labels=(*per_test, "phase"),
        )
        self.vital = Family(
            name="synthetic_browser_last_vital_seconds",
            kind="gauge",
            help="Web Vitals (fcp, lcp, tbt) of the last page the test's last run visited",
            labels=(*per_test, "vital"),
        )
        self.cls = Family(
            name="synthetic_browser_last_cls",
            kind="gauge",
            help="Cumulative layout shift of the last page the test's last run visited",
            labels=per_test,
        )
        self.requests = Family(
            name="synthetic_browser_last_requests",
            kind="gauge",
            help="Responses of the pages the test's last run visited, summed",
            labels=per_test,
        )
        self.transfer_bytes = Family(
            name="synthetic_browser_last_transfer_bytes",
            kind="gauge",
            help="Bytes transferred by the pages the test's last run visited, summed",
            labels=per_test,
        )
        self._keyed: dict[Key, list[tuple[Family, Key]]] = {}

    def families(self) -> list[Family]:
        """Return the families in exposition order."""
        return [self.phase, self.vital, self.cls, self.requests, self.transfer_bytes]

    def set_last(self, test: Key, pages: tuple[PageRecord, ...]) -> None:
        """Replace one test's series with those of ``pages`` (none: the test has none)."""
        values: list[tuple[Family, Key, float]] = []
        if pages:
            last = pages[-1]
            values += [(self.phase, (*test, p), s) for p, s in last.phases.items()]
            values += [(self.vital, (*test, v), s) for v, s in last.vitals.items()]
            if last.cls is not None:
                values.append((self.cls, test, last.cls))
            values.append((self.requests, test, sum(p.requests for p in pages)))
            values.append((self.transfer_bytes, test, sum(p.transfer_bytes for p in pages)))
        kept = {(family.name, key) for family, key, _ in values}
        for family, key in self._keyed.get(test, ()):
            if (family.name, key) not in kept:
                family.remove(key)
        for family, key, value in values:
            family.set(key, value)
        if values:
            self._keyed[test] = [(family, key) for family, key, _ in values]
        else:
            self._keyed.pop(test, None)


class SuiteSeries(CachedFamilies):
    """Every series of one suite, as plain values, with its rendered blocks cached."""

    def __init__(self, constant: tuple[str, ...], options: MetricsOptions) -> None:
        self.test = ResultSeries.define(constant, "test", TEST_BUCKETS, options, "suite", "test")
        self.suite = ResultSeries.define(constant, "suite", SUITE_BUCKETS, options, "suite")
        own = (*constant, "suite")
        self.overruns = Family(
            name="synthetic_suite_overruns_total",
            kind="counter",
            help="Run slots dropped: previous run still going",
            labels=own,
        )
        self.interval = Family(
            name="synthetic_suite_interval_seconds",
            kind="gauge",
            help="Expected seconds between runs",
            labels=own,
        )
        self.cleanup_failures = Family(
            name="synthetic_cleanup_failures_total",
            kind="counter",
            help="Cleanup and janitor calls that failed",
            labels=own,
        )
        self.pending = Family(
            name="synthetic_cleanup_pending",
            kind="gauge",
            help="Leftover resources awaiting a retried clean-up",
            labels=own,
        )
        self.http_last_phase = Family(
            name="synthetic_http_last_phase_seconds",
            kind="gauge",
            help="Time the test's last run spent in each phase of its requests to a target,"
            " summed over them; a phase that did not happen has no series",
            labels=(*constant, "suite", "test", "target", "phase"),
        )
        per_test = (*constant, "suite", "test", "target")
        self.http_phase = _http_phase(per_test) if options.http_per_test else None
        self.http_responses = _http_responses(per_test) if options.http_per_test else None
        self.storage_versions = Family(
            name="synthetic_storage_object_versions",
            kind="gauge",
            help="Object versions under a storage check's prefix, as last counted",
            labels=(*constant, "suite", "target"),
        )
        self.storage_markers = Family(
            name="synthetic_storage_delete_markers",
            kind="gauge",
            help="Delete markers under a storage check's prefix, as last counted",
            labels=(*constant, "suite", "target"),
        )
        self.browser = BrowserSeries(constant)
        every = [
            *self.test.families(),
            *self.suite.families(),
            self.overruns,
            self.interval,
            self.cleanup_failures,
            self.pending,
            self.http_last_phase,
            self.http_phase,
            self.http_responses,
            self.storage_versions,
            self.storage_markers,
            *self.browser.families(),
        ]
        super().__init__([family for family in every if family is not None])
        self.has_janitors = False  # set at load: only then do clean-up series exist from start
        self.pending_count: int | None = None
        self._last_phases: dict[Key, list[Key]] = {}

    def set_last_phases(self, test: Key, seconds: Mapping[tuple[str, str], float]) -> None:
        """Replace one test's last-run phase gauges with ``seconds`` per (target, phase)."""
        keys = [(*test, target, phase) for target, phase in seconds]
        for gone in set(self._last_phases.get(test, ())) - set(keys):
            self.http_last_phase.remove(gone)
        for key, value in zip(keys, seconds.values(), strict=True):
            self.http_last_phase.set(key, value)
        self._last_phases[test] = keys
