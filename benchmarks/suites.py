"""The suites the benchmark runs in the agent, the agent's listeners wired as ``serve`` wires
them, and synthetic results to fill a registry with a chosen number of series."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from synthetic_exporter import T, __version__
from synthetic_exporter.app.serve import PendingCleanups, constant_labels, intervals_of
from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.results import Outcome, RequestRecord, SuiteResult, TestResult
from synthetic_exporter.engine.loader import LoadResult
from synthetic_exporter.engine.runner import Engine
from synthetic_exporter.engine.wiring import Fanout
from synthetic_exporter.exporter.failure_log import FailureLogger
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History
from synthetic_exporter.exporter.metrics import Metrics, MetricsOptions

ClientFor = Callable[[T], httpx.AsyncClient]


@dataclass(slots=True)
class Path:
    """The path a check requests next (set by the driver before each run)."""

    value: str = "/delay/0"


def http_suite(name: str, client_for: ClientFor, path: Path, interval: float = 3600.0) -> Suite:
    """Return a suite with one test that GETs ``path`` through ``client_for(t)``."""
    suite = Suite(name, interval=interval, timeout=60, test_timeout=30)

    async def check(t: T) -> None:
        response = await client_for(t).get(path.value)
        assert response.status_code == 200, response.text

    suite.test(check)
    return suite


def noop_suite(name: str, interval: float) -> Suite:
    """Return a suite with one test that does nothing (schedule-lag measurements)."""
    suite = Suite(name, interval=interval, timeout=60)

    async def noop(t: T) -> None:
        return None

    suite.test(noop)
    return suite


@dataclass(slots=True)
class AgentListeners:
    """What ``serve`` attaches to the coordinator, over a registry of their own."""

    registry: CollectorRegistry
    metrics: Metrics
    health: Health
    history: History
    fanout: Fanout


def agent_listeners(
    engine: Engine, suites: Mapping[str, Suite], *, pending_refresh: bool = True
) -> AgentListeners:
    """Return the listeners ``serve`` wires (metrics, health, history, pending, failures).

    ``pending_refresh=False`` is a what-if: without ``PendingCleanups``, whose refresh after
    every suite result sets the pending gauge of every loaded suite (O(suites) per result).
    """
    settings = engine.settings
    loaded = LoadResult(dict(suites), ())
    registry = CollectorRegistry()
    options = MetricsOptions.from_settings(settings)
    metrics = Metrics(registry, constant_labels(settings), __version__, options)
    metrics.suites_loaded(loaded.suites, 0, settings.interval)
    health = Health(intervals=intervals_of(settings, loaded), started_at=time.time())
    history = History(settings.history_size)
    pending = PendingCleanups(engine.ledger, metrics, list(suites))
    fanout = Fanout([metrics, health, history, pending, FailureLogger()])
    if not pending_refresh:
        fanout.listeners.remove(pending)
    return AgentListeners(registry, metrics, health, history, fanout)


def synthetic_result(suite: str, at: float, test: str = "check", http: bool = True) -> SuiteResult:
    """Return a passed one-test suite result, with one pooled HTTP request like a real check."""
    requests = (
        RequestRecord(
            target="default",
            method="GET",
            path="/delay/0",
            status=200,
            duration_seconds=0.0012,
            phases={"processing": 0.001, "transfer": 0.0001},
        ),
    )
    result = TestResult(
        suite=suite,
        name=test,
        outcome=Outcome.PASSED,
        duration_seconds=0.0015,
        started_at=at - 0.0015,
        ended_at=at,
        requests=requests if http else (),
    )
    return SuiteResult(
        suite=suite,
        run_id="run1",
        outcome=Outcome.PASSED,
        tests=(result,),
        started_at=at - 0.002,
        ended_at=at,
        duration_seconds=0.002,
        scheduled_at=at - 0.002,
    )


def count_series(registry: CollectorRegistry) -> int:
    """Return the number of samples (series) in the text exposition of ``registry``."""
    body = generate_latest(registry)
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def fill_metrics(
    metrics: Metrics, registry: CollectorRegistry, series: int
) -> tuple[int, list[str]]:
    """Record synthetic suites through ``Metrics.suite_finished`` until about ``series`` series.

    Returns the series count reached (at least ``series``) and the suites recorded.
    """
    now = time.time()
    metrics.suite_finished(synthetic_result("fill00000", now))
    base = count_series(registry)  # with the per-target families the first suite made
    metrics.suite_finished(synthetic_result("fill00001", now))
    per_suite = max(count_series(registry) - base, 1)
    names = [f"fill{i:05d}" for i in range(max(-(-(series - base) // per_suite) + 1, 2))]
    for name in names[2:]:
        metrics.suite_finished(synthetic_result(name, now))
    return count_series(registry), names
