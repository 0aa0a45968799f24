"""Metrics: results in, the synthetic_ contract out, on a fresh registry per test."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.results import (
    AssetCount,
    CleanupFailure,
    Outcome,
    PageRecord,
    SuiteResult,
    TestResult,
    suite_outcome,
)
from synthetic_exporter.engine.runner import Listener
from synthetic_exporter.exporter.metrics import (
    Metrics,
    MetricsOptions,
    render_registry,
    render_registry_off_loop,
)

CONSTANT = {"environment": "prod", "location": "eu-west-1"}
T0 = 1_700_000_000.0
T1 = T0 + 300
SUITE = "checkout"
DETAILED = MetricsOptions(duration_histograms=True, run_counters=True, http_per_test=True)
# The families the knobs add (http_per_test only relabels two default families).
DETAILED_CONTRACT = {
    ("synthetic_test_duration_seconds", "histogram"),
    ("synthetic_test_runs", "counter"),
    ("synthetic_suite_duration_seconds", "histogram"),
    ("synthetic_suite_runs", "counter"),
}
CONTRACT = {
    ("synthetic_test_success", "gauge"),
    ("synthetic_test_result", "gauge"),
    ("synthetic_test_last_duration_seconds", "gauge"),
    ("synthetic_test_last_run_timestamp_seconds", "gauge"),
    ("synthetic_test_last_success_timestamp_seconds", "gauge"),
    ("synthetic_suite_success", "gauge"),
    ("synthetic_suite_result", "gauge"),
    ("synthetic_suite_last_duration_seconds", "gauge"),
    ("synthetic_suite_last_run_timestamp_seconds", "gauge"),
    ("synthetic_suite_last_success_timestamp_seconds", "gauge"),
    ("synthetic_suite_overruns", "counter"),
    ("synthetic_suite_interval_seconds", "gauge"),
    ("synthetic_cleanup_failures", "counter"),
    ("synthetic_cleanup_pending", "gauge"),
    ("synthetic_exporter_build_info", "gauge"),
    ("synthetic_exporter_suites_loaded", "gauge"),
    ("synthetic_exporter_load_errors", "gauge"),
    ("synthetic_exporter_schedule_lag_seconds", "histogram"),
    ("synthetic_exporter_event_loop_blocked_seconds", "counter"),
    ("synthetic_exporter_history_dropped_runs", "counter"),
    ("synthetic_http_last_phase_seconds", "gauge"),
    ("synthetic_http_request_duration_seconds", "histogram"),
    ("synthetic_http_responses", "counter"),
    ("synthetic_http_edge_responses", "counter"),
    ("synthetic_tls_cert_expiry_timestamp_seconds", "gauge"),
    ("synthetic_storage_object_versions", "gauge"),
    ("synthetic_storage_delete_markers", "gauge"),
    ("synthetic_browser_last_phase_seconds", "gauge"),
    ("synthetic_browser_last_vital_seconds", "gauge"),
    ("synthetic_browser_last_cls", "gauge"),
    ("synthetic_browser_last_requests", "gauge"),
    ("synthetic_browser_last_transfer_bytes", "gauge"),
    ("synthetic_browser_asset_responses", "counter"),
}
# The browser pool's families, once the agent watches a pool (Metrics.watch_browser).
BROWSER_AGENT = {
    ("synthetic_exporter_browser_processes", "gauge"),
    ("synthetic_exporter_browser_memory_bytes", "gauge"),
    ("synthetic_exporter_browser_contexts", "gauge"),
    ("synthetic_exporter_browser_restarts", "counter"),
}


def make_test(
    name: str = "login",
    *,
    outcome: Outcome = Outcome.PASSED,
    duration: float = 0.2,
    ended_at: float = T0,
    cleanup_failures: int = 0,
) -> TestResult:
    """Return a test result of suite SUITE."""
    failures = tuple(CleanupFailure(f"cleanup{i}", "boom") for i in range(cleanup_failures))
    return TestResult(
        suite=SUITE,
        name=name,
        outcome=outcome,
        duration_seconds=duration,
        started_at=ended_at - duration,
        ended_at=ended_at,
        cleanup_failures=failures,
    )


def make_suite(
    *tests: TestResult,
    duration: float = 1.5,
    ended_at: float = T0,
    janitor_failures: int = 0,
    skip_reason: str = "",
) -> SuiteResult:
    """Return a result of suite SUITE whose outcome follows from its tests."""
    failures = tuple(CleanupFailure(f"janitor{i}", "boom") for i in range(janitor_failures))
    return SuiteResult(
        suite=SUITE,
        run_id="run-1",
        outcome=suite_outcome(tests),
        tests=tests,
        started_at=ended_at - duration,
        ended_at=ended_at,
        duration_seconds=duration,
        scheduled_at=ended_at - duration,
        skip_reason=skip_reason,
        janitor_failures=failures,
    )


def make_page(
    path: str = "/",
    *,
    lcp: float = 1.2,
    cls: float | None = 0.05,
    requests: int = 12,
    transfer_bytes: int = 300_000,
    phases: dict[str, float] | None = None,
    assets: tuple[AssetCount, ...] = (),
) -> PageRecord:
    """Return a page visit of target "web"."""
    return PageRecord(
        target="web",
        path=path,
        status=200,
        phases={"dns": 0.001, "connect": 0.002, "tls": 0.01, "ttfb": 0.05, "load": 0.4}
        if phases is None
        else phases,
        vitals={"fcp": 0.3, "lcp": lcp, "tbt": 0.02},
        cls=cls,
        requests=requests,
        transfer_bytes=transfer_bytes,
        assets=assets,
    )


def skipped_suite(ended_at: float) -> SuiteResult:
    """Return a suite result skipped because a dependency failed, as the runner builds it."""
    reason = "dependency 'signup' failed"
    test = make_test(outcome=Outcome.SKIPPED, duration=0.0, ended_at=ended_at)
    return make_suite(test, duration=0.0, ended_at=ended_at, skip_reason=reason)


def loaded_suites() -> dict[str, Suite]:
    """Return two suites: one with its own interval and a janitor, one using the default."""
    checkout = Suite(SUITE, interval="1m")
    signup = Suite("signup")

    @checkout.janitor("session")
    async def end_session(j: object, r: object) -> None:
        """End a session left behind."""

    @checkout.test
    async def login(t: object) -> None:
        """Log in."""

    @checkout.test
    async def pay(t: object) -> None:
        """Pay."""

    @signup.test
    async def register(t: object) -> None:
        """Register."""

    return {s.name: s for s in (checkout, signup)}


@pytest.fixture
def registry() -> CollectorRegistry:
    """Return a fresh registry."""
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    """Return metrics at default settings with two constant labels on the fresh registry."""
    return Metrics(registry, CONSTANT, version="1.2.3")


@pytest.fixture
def detailed(registry: CollectorRegistry) -> Metrics:
    """Return metrics with every detailed family turned on, on the fresh registry."""
    return Metrics(registry, CONSTANT, version="1.2.3", options=DETAILED)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    """Return a sample's value, the constant labels added to ``labels``."""
    return registry.get_sample_value(name, {**CONSTANT, **labels})


def of_test(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    """Return a sample of test "login" of SUITE."""
    return value(registry, name, suite=SUITE, test="login", **labels)


def of_suite(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    """Return a sample of SUITE."""
    return value(registry, name, suite=SUITE, **labels)


def one_hot(registry: CollectorRegistry, kind: str) -> dict[str, float | None]:
    """Return the ``synthetic_<kind>_result`` series of "login" or SUITE, by result."""
    read = of_test if kind == "test" else of_suite
    return {o.value: read(registry, f"synthetic_{kind}_result", result=o.value) for o in Outcome}


def expected_one_hot(outcome: Outcome) -> dict[str, float | None]:
    """Return the result series expected for ``outcome``: its own at 1, no other."""
    return {o.value: 1.0 if o is outcome else None for o in Outcome}


def test_metrics_is_a_runner_listener(metrics: Metrics) -> None:
    listener: Listener = metrics
    listener.test_finished(make_test())  # recorded with its suite, not on its own
    assert metrics is listener


@pytest.mark.parametrize(
    ("options", "contract"),
    [(MetricsOptions(), CONTRACT), (DETAILED, CONTRACT | DETAILED_CONTRACT)],
    ids=["default", "detailed"],
)
def test_defines_exactly_the_contract_with_constant_labels_on_every_sample(
    registry: CollectorRegistry, options: MetricsOptions, contract: set[tuple[str, str]]
) -> None:
    metrics = Metrics(registry, CONSTANT, version="1.2.3", options=options)
    metrics.suites_loaded(loaded_suites(), load_errors=1, default_interval=300.0)
    metrics.suite_finished(make_suite(make_test(cleanup_failures=1)))
    metrics.overrun(SUITE)
    metrics.schedule_lag(0.01)
    metrics.cleanup_pending({SUITE: 1}, [SUITE, "signup"])

    families = [m for m in registry.collect() if m.name.startswith("synthetic_")]
    assert {(m.name, m.type) for m in families} == contract
    for sample in (s for m in families for s in m.samples):
        assert sample.labels.items() >= CONSTANT.items(), sample
        assert list(sample.labels)[: len(CONSTANT)] == list(CONSTANT), sample


def test_passed_test_sets_every_series(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.suite_finished(make_suite(make_test(duration=0.2, ended_at=T0)))

    assert of_test(registry, "synthetic_test_success") == 1
    assert one_hot(registry, "test") == expected_one_hot(Outcome.PASSED)
    assert of_test(registry, "synthetic_test_last_duration_seconds") == pytest.approx(0.2)
    assert of_test(registry, "synthetic_test_last_run_timestamp_seconds") == T0
    assert of_test(registry, "synthetic_test_last_success_timestamp_seconds") == T0
    assert of_test(registry, "synthetic_test_duration_seconds_count") is None
    assert of_test(registry, "synthetic_test_runs_total", result="passed") is None
    test_samples = [s for m in registry.collect() for s in m.samples if s.labels.get("test")]
    assert len(test_samples) == 5, "one series per test family at default settings"


def test_passed_test_with_detailed_families(registry: CollectorRegistry, detailed: Metrics) -> None:
    detailed.suite_finished(make_suite(make_test(duration=0.2, ended_at=T0)))

    assert of_test(registry, "synthetic_test_success") == 1
    assert one_hot(registry, "test") == expected_one_hot(Outcome.PASSED)
    assert of_test(registry, "synthetic_test_duration_seconds_count") == 1
    assert of_test(registry, "synthetic_test_duration_seconds_sum") == pytest.approx(0.2)
    assert of_test(registry, "synthetic_test_duration_seconds_bucket", le="0.1") == 0
    assert of_test(registry, "synthetic_test_duration_seconds_bucket", le="0.25") == 1
    assert of_test(registry, "synthetic_test_last_duration_seconds") == pytest.approx(0.2)
    assert of_test(registry, "synthetic_test_last_run_timestamp_seconds") == T0
    assert of_test(registry, "synthetic_test_last_success_timestamp_seconds") == T0
    assert of_test(registry, "synthetic_test_runs_total", result="passed") == 1


def test_passed_suite_sets_every_series(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.suite_finished(make_suite(make_test(), duration=1.5, ended_at=T0))

    assert of_suite(registry, "synthetic_suite_success") == 1
    assert one_hot(registry, "suite") == expected_one_hot(Outcome.PASSED)
    assert of_suite(registry, "synthetic_suite_last_duration_seconds") == 1.5
    assert of_suite(registry, "synthetic_suite_last_run_timestamp_seconds") == T0
    assert of_suite(registry, "synthetic_suite_last_success_timestamp_seconds") == T0
    assert of_suite(registry, "synthetic_suite_duration_seconds_count") is None
    assert of_suite(registry, "synthetic_suite_runs_total", result="passed") is None
    assert of_suite(registry, "synthetic_cleanup_failures_total") is None, "no janitor, no series"


def test_passed_suite_with_detailed_families(
    registry: CollectorRegistry, detailed: Metrics
) -> None:
    detailed.suite_finished(make_suite(make_test(), duration=1.5, ended_at=T0))

    assert of_suite(registry, "synthetic_suite_success") == 1
    assert one_hot(registry, "suite") == expected_one_hot(Outcome.PASSED)
    assert of_suite(registry, "synthetic_suite_duration_seconds_count") == 1
    assert of_suite(registry, "synthetic_suite_duration_seconds_bucket", le="1.0") == 0
    assert of_suite(registry, "synthetic_suite_duration_seconds_bucket", le="2.5") == 1
    assert of_suite(registry, "synthetic_suite_last_duration_seconds") == 1.5
    assert of_suite(registry, "synthetic_suite_last_run_timestamp_seconds") == T0
    assert of_suite(registry, "synthetic_suite_last_success_timestamp_seconds") == T0
    assert of_suite(registry, "synthetic_suite_runs_total", result="passed") == 1


@pytest.mark.parametrize("outcome", list(Outcome))
def test_result_holds_only_the_last_outcome(
    registry: CollectorRegistry, metrics: Metrics, outcome: Outcome
) -> None:
    metrics.suite_finished(make_suite(make_test(outcome=Outcome.FAILED)))
    metrics.suite_finished(make_suite(make_test(outcome=outcome)))

    assert one_hot(registry, "test") == expected_one_hot(outcome)
    assert one_hot(registry, "suite") == expected_one_hot(outcome)
    assert of_test(registry, "synthetic_test_success") == (1 if outcome.ok else 0)
    assert of_suite(registry, "synthetic_suite_success") == (1 if outcome.ok else 0)


def test_failure_keeps_the_last_success_and_counts_every_result(
    registry: CollectorRegistry, detailed: Metrics
) -> None:
    failed = make_test(outcome=Outcome.FAILED, duration=3.0, ended_at=T1)
    detailed.suite_finished(make_suite(make_test(ended_at=T0)))
    detailed.suite_finished(make_suite(failed, ended_at=T1))
    detailed.suite_finished(make_suite(failed, ended_at=T1))

    assert of_test(registry, "synthetic_test_success") == 0
    assert of_test(registry, "synthetic_test_last_run_timestamp_seconds") == T1
    assert of_test(registry, "synthetic_test_last_success_timestamp_seconds") == T0
    assert of_test(registry, "synthetic_test_last_duration_seconds") == 3.0
    assert of_test(registry, "synthetic_test_duration_seconds_count") == 3
    assert of_test(registry, "synthetic_test_runs_total", result="passed") == 1
    assert of_test(registry, "synthetic_test_runs_total", result="failed") == 2
    assert of_suite(registry, "synthetic_suite_runs_total", result="failed") == 2
    assert of_suite(registry, "synthetic_suite_last_success_timestamp_seconds") == T0


def test_flaky_counts_as_success_but_shows_in_result(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.suite_finished(make_suite(make_test(outcome=Outcome.FLAKY, ended_at=T1)))

    assert of_test(registry, "synthetic_test_success") == 1
    assert of_test(registry, "synthetic_test_result", result="flaky") == 1
    assert of_test(registry, "synthetic_test_result", result="passed") is None
    assert of_test(registry, "synthetic_test_last_success_timestamp_seconds") == T1
    assert of_suite(registry, "synthetic_suite_success") == 1
    assert of_suite(registry, "synthetic_suite_result", result="flaky") == 1


def test_skipped_suite_sets_last_run_but_no_durations(
    registry: CollectorRegistry, detailed: Metrics
) -> None:
    detailed.suite_finished(make_suite(make_test(duration=0.2, ended_at=T0), duration=1.5))
    detailed.suite_finished(skipped_suite(ended_at=T1))

    for read, kind, last_duration in ((of_test, "test", 0.2), (of_suite, "suite", 1.5)):
        assert read(registry, f"synthetic_{kind}_success") == 0
        assert one_hot(registry, kind) == expected_one_hot(Outcome.SKIPPED)
        assert read(registry, f"synthetic_{kind}_duration_seconds_count") == 1
        assert read(registry, f"synthetic_{kind}_last_duration_seconds") == last_duration
        assert read(registry, f"synthetic_{kind}_last_run_timestamp_seconds") == T1
        assert read(registry, f"synthetic_{kind}_last_success_timestamp_seconds") == T0
        assert read(registry, f"synthetic_{kind}_runs_total", result="skipped") == 1


def test_first_result_skipped_creates_no_duration_or_success_time(
    registry: CollectorRegistry, detailed: Metrics
) -> None:
    detailed.suite_finished(skipped_suite(ended_at=T1))

    for read, kind in ((of_test, "test"), (of_suite, "suite")):
        assert read(registry, f"synthetic_{kind}_last_run_timestamp_seconds") == T1
        assert read(registry, f"synthetic_{kind}_duration_seconds_count") is None
        assert read(registry, f"synthetic_{kind}_last_duration_seconds") is None
        assert read(registry, f"synthetic_{kind}_last_success_timestamp_seconds") is None


def test_subtests_are_series_of_their_own(registry: CollectorRegistry, metrics: Metrics) -> None:
    subtest = make_test("login/sso", outcome=Outcome.FAILED)
    metrics.suite_finished(make_suite(make_test("login"), subtest))

    assert value(registry, "synthetic_test_success", suite=SUITE, test="login") == 1
    assert value(registry, "synthetic_test_success", suite=SUITE, test="login/sso") == 0
    assert of_suite(registry, "synthetic_suite_result", result="failed") == 1


def test_cleanup_failures_are_counted(registry: CollectorRegistry, metrics: Metrics) -> None:
    tests = (make_test("login", cleanup_failures=2), make_test("pay", cleanup_failures=1))
    # The janitor failure of the result was counted when it happened (cleanup_failed).
    metrics.cleanup_failed(SUITE)
    metrics.suite_finished(make_suite(*tests, janitor_failures=1))
    metrics.suite_finished(make_suite(make_test()))

    assert of_suite(registry, "synthetic_cleanup_failures_total") == 4


@pytest.mark.parametrize("options", [MetricsOptions(), DETAILED], ids=["default", "detailed"])
def test_suites_loaded_pre_creates_counters_but_not_success(
    registry: CollectorRegistry, options: MetricsOptions
) -> None:
    metrics = Metrics(registry, CONSTANT, version="1.2.3", options=options)
    metrics.suites_loaded(loaded_suites(), load_errors=2, default_interval=300.0)

    assert value(registry, "synthetic_exporter_suites_loaded") == 2
    assert value(registry, "synthetic_exporter_load_errors") == 2
    assert value(registry, "synthetic_suite_interval_seconds", suite=SUITE) == 60
    assert value(registry, "synthetic_suite_interval_seconds", suite="signup") == 300
    # Clean-up failures can be seen from the first only where a janitor can fail.
    assert value(registry, "synthetic_cleanup_failures_total", suite=SUITE) == 0
    assert value(registry, "synthetic_cleanup_failures_total", suite="signup") is None
    for suite, tests in ((SUITE, ("login", "pay")), ("signup", ("register",))):
        assert value(registry, "synthetic_suite_overruns_total", suite=suite) == 0
        if not options.run_counters:
            assert (
                value(registry, "synthetic_suite_runs_total", suite=suite, result="passed") is None
            )
            continue
        for outcome in Outcome:
            runs = value(registry, "synthetic_suite_runs_total", suite=suite, result=outcome.value)
            assert runs == 0
            for test in tests:
                labels = {"suite": suite, "test": test, "result": outcome.value}
                assert value(registry, "synthetic_test_runs_total", **labels) == 0
    never_created = [
        m.name
        for m in registry.collect()
        if m.samples and m.name.endswith(("_success", "_result", "_last_run_timestamp_seconds"))
    ]
    assert never_created == []


def test_overruns_schedule_lag_and_build_info(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.overrun(SUITE)
    metrics.overrun(SUITE)
    metrics.schedule_lag(0.003)
    metrics.schedule_lag(0.3)

    assert of_suite(registry, "synthetic_suite_overruns_total") == 2
    assert value(registry, "synthetic_exporter_schedule_lag_seconds_count") == 2
    assert value(registry, "synthetic_exporter_schedule_lag_seconds_bucket", le="0.005") == 1
    assert value(registry, "synthetic_exporter_schedule_lag_seconds_bucket", le="0.5") == 2
    assert value(registry, "synthetic_exporter_build_info", version="1.2.3") == 1


def test_loop_blocks_and_sweep_failures_are_counted(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assert value(registry, "synthetic_exporter_event_loop_blocked_seconds_total") == 0
    metrics.loop_blocked(1.5)
    metrics.loop_blocked(2.0)
    metrics.cleanup_failed(SUITE, 2)
    metrics.cleanup_failed(SUITE)

    assert value(registry, "synthetic_exporter_event_loop_blocked_seconds_total") == 3.5
    assert of_suite(registry, "synthetic_cleanup_failures_total") == 3


def test_dropped_history_runs_and_spans_are_read_at_scrape_time(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assert value(registry, "synthetic_exporter_history_dropped_runs_total") == 0
    assert "synthetic_exporter_otlp_dropped_spans" not in {m.name for m in registry.collect()}
    kept = {"runs": 0, "spans": 0}
    metrics.watch_history_drops(lambda: kept["runs"])
    metrics.watch_span_drops(lambda: kept["spans"])
    kept.update(runs=3, spans=40)
    assert value(registry, "synthetic_exporter_history_dropped_runs_total") == 3
    assert value(registry, "synthetic_exporter_otlp_dropped_spans_total") == 40


def test_cleanup_pending_sets_zero_for_suites_with_janitors_or_seen_pending(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.suites_loaded(loaded_suites(), load_errors=0, default_interval=300.0)
    metrics.cleanup_pending({"retired": 1}, [SUITE, "signup"])
    assert of_suite(registry, "synthetic_cleanup_pending") == 0, "has a janitor"
    assert value(registry, "synthetic_cleanup_pending", suite="signup") is None, "has none"
    assert value(registry, "synthetic_cleanup_pending", suite="retired") == 1

    metrics.cleanup_pending({SUITE: 3, "signup": 2}, [SUITE, "signup"])
    assert of_suite(registry, "synthetic_cleanup_pending") == 3
    assert value(registry, "synthetic_cleanup_pending", suite="signup") == 2

    metrics.cleanup_pending({}, [SUITE, "signup"])
    assert of_suite(registry, "synthetic_cleanup_pending") == 0
    assert value(registry, "synthetic_cleanup_pending", suite="signup") == 0, "seen, so kept"
    assert value(registry, "synthetic_cleanup_pending", suite="retired") == 0


def test_process_and_python_metrics_are_on_the_injected_registry(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    names = {m.name for m in registry.collect()}

    assert {"process_cpu_seconds", "python_info", "python_gc_collections"} <= names


def test_works_without_constant_labels(registry: CollectorRegistry) -> None:
    metrics = Metrics(registry, {}, version="1.2.3")
    metrics.suites_loaded(loaded_suites(), load_errors=0, default_interval=300.0)
    metrics.schedule_lag(0.01)
    metrics.suite_finished(make_suite(make_test()))

    assert registry.get_sample_value("synthetic_exporter_suites_loaded") == 2
    assert registry.get_sample_value("synthetic_exporter_schedule_lag_seconds_count") == 1
    assert registry.get_sample_value("synthetic_exporter_build_info", {"version": "1.2.3"}) == 1
    labels = {"suite": SUITE, "test": "login"}
    assert registry.get_sample_value("synthetic_test_success", labels) == 1


@pytest.mark.parametrize("name", ["suite", "test", "result", "version"])
def test_constant_labels_may_not_clash_with_metric_labels(
    registry: CollectorRegistry, name: str
) -> None:
    with pytest.raises(ValueError, match=f"clash with metric labels: \\['{name}'\\]"):
        Metrics(registry, {name: "x"}, version="1.2.3")


def test_render_defaults_to_prometheus_text(registry: CollectorRegistry, metrics: Metrics) -> None:
    body, content_type = render_registry(registry, None)

    assert content_type.startswith("text/plain; version=0.0.4")
    labels = b'environment="prod",location="eu-west-1",version="1.2.3"'
    assert b"synthetic_exporter_build_info{" + labels + b"} 1.0" in body
    assert not body.rstrip().endswith(b"# EOF")


def test_render_gives_openmetrics_when_asked(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.suites_loaded(loaded_suites(), load_errors=0, default_interval=300.0)
    body, content_type = render_registry(registry, "application/openmetrics-text; version=1.0.0")

    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert b"# TYPE synthetic_suite_overruns counter" in body
    assert body.endswith(b"# EOF\n")


@pytest.mark.slow
def test_text_exposition_passes_promtool(
    registry: CollectorRegistry, metrics: Metrics, tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not on PATH: run `make system-deps` (Debian package prometheus)")
    metrics.suites_loaded(loaded_suites(), load_errors=1, default_interval=300.0)
    assets = (AssetCount("web", "LHR", "Hit", 9), AssetCount("other", "none", "none", 1))
    browser = replace(make_test(), pages=(make_page(assets=assets),))
    metrics.suite_finished(make_suite(browser, make_test("pay", outcome=Outcome.FLAKY)))
    metrics.suite_finished(skipped_suite(ended_at=T1))
    metrics.overrun(SUITE)
    metrics.schedule_lag(0.02)
    metrics.cleanup_pending({SUITE: 1}, [SUITE, "signup"])
    metrics.watch_browser(lambda: Stats(3, 200_000_000, 1, 0))
    exposition = tmp_path / "metrics.prom"
    exposition.write_bytes(metrics.render(None)[0])  # the cached, joined exposition

    with exposition.open("rb") as stdin:
        done = subprocess.run(
            [promtool, "check", "metrics"],
            stdin=stdin,
            capture_output=True,
            timeout=60,
            check=False,
        )

    problems = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, problems
    assert not done.stdout.strip(), problems
    assert not done.stderr.strip(), problems


class ThreadRecorder:
    """A collector that notes the thread of every collect() and yields nothing."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def collect(self) -> Iterable[Metric]:
        """Note the current thread."""
        self.threads.append(threading.get_ident())
        return []


async def test_render_registry_off_loop_renders_in_a_worker_thread(
    registry: CollectorRegistry,
) -> None:
    Gauge("synthetic_exporter_suites_loaded", "Suites loaded", registry=registry).set(3)
    recorder = ThreadRecorder()
    registry.register(recorder)
    accept = "application/openmetrics-text; version=1.0.0"

    off_loop = await render_registry_off_loop(registry, accept)
    on_loop = render_registry(registry, accept)

    assert off_loop == on_loop
    assert recorder.threads[0] != threading.get_ident()
    assert recorder.threads[1] == threading.get_ident()


@pytest.mark.parametrize("per_test", [False, True], ids=["per-target", "per-test"])
def test_requests_phases_edges_certificates_and_storage_reports(per_test: bool) -> None:

    from synthetic_exporter.core.results import RequestRecord, StorageReport

    registry = CollectorRegistry()
    options = MetricsOptions(http_per_test=per_test)
    metrics = Metrics(registry, CONSTANT, version="0.1.0", options=options)
    fresh = RequestRecord(
        target="cdn",
        method="GET",
        path="/logo.svg",
        status=200,
        duration_seconds=0.05,
        phases={
            "resolve": 0.001,
            "connect": 0.002,
            "tls": 0.01,
            "processing": 0.03,
            "transfer": 0.005,
        },
        cache="Miss",
        pop="LHR",
        tls_version="TLSv1.3",
        cert_not_after=1_900_000_000.0,
    )
    pooled = RequestRecord(
        target="cdn",
        method="GET",
        path="/logo.svg",
        status=200,
        duration_seconds=0.01,
        phases={"processing": 0.008},
        cache="Hit",
        pop="LHR",
    )
    failed = RequestRecord(
        target="api",
        method="POST",
        path="/customers",
        status=None,
        duration_seconds=0.1,
        phases={},
        error="ConnectError: x",
    )
    test = replace(
        make_test("fetch"),
        requests=(fresh, pooled, failed),
        storage=(StorageReport("s3", 12, 3),),
    )
    metrics.suite_finished(make_suite(test))
    of_run = {"suite": test.suite, "test": "fetch"}
    where = {**of_run, "target": "cdn"} if per_test else {"target": "cdn"}
    assert value(registry, "synthetic_http_request_duration_seconds_count", **of_run) is None
    phase = "synthetic_http_request_duration_seconds_count"
    assert value(registry, phase, **where, phase="processing") == 2
    assert value(registry, phase, **where, phase="tls") == 1
    responses = "synthetic_http_responses_total"
    assert value(registry, responses, **where, code="200", cache="Miss") == 1
    assert value(registry, responses, **where, code="200", cache="Hit") == 1
    assert value(registry, responses, **{**where, "target": "api"}, code="error", cache="none") == 1
    edge = "synthetic_http_edge_responses_total"
    assert value(registry, edge, target="cdn", pop="LHR", cache="Hit") == 1
    assert value(registry, edge, target="api", pop="none", cache="none") is None
    expiry = "synthetic_tls_cert_expiry_timestamp_seconds"
    assert value(registry, expiry, target="cdn") == 1_900_000_000.0
    storage = {"suite": test.suite, "target": "s3"}
    assert value(registry, "synthetic_storage_delete_markers", **storage) == 3
    assert value(registry, "synthetic_storage_object_versions", **storage) == 12
    # The last run's phases per test and target: summed over its requests, absent if none.
    last = "synthetic_http_last_phase_seconds"
    cdn = {**of_run, "target": "cdn"}
    assert value(registry, last, **cdn, phase="processing") == pytest.approx(0.038)
    assert value(registry, last, **cdn, phase="tls") == pytest.approx(0.01)
    assert value(registry, last, **{**cdn, "target": "api"}, phase="processing") is None
    # A run on a pooled connection replaces them: no tls series, processing its own.
    metrics.suite_finished(make_suite(replace(test, requests=(pooled,), storage=())))
    assert value(registry, last, **cdn, phase="processing") == pytest.approx(0.008)
    assert value(registry, last, **cdn, phase="tls") is None
    # A skipped run keeps the last ones, as it keeps the last duration.
    metrics.suite_finished(make_suite(make_test("fetch", outcome=Outcome.SKIPPED)))
    assert value(registry, last, **cdn, phase="processing") == pytest.approx(0.008)


def samples_of(text: bytes) -> list[str]:
    """Return an exposition's sample lines (not HELP/TYPE), sorted, without process_/python_."""
    lines = text.decode().splitlines()
    return sorted(
        line for line in lines if line and not line.startswith(("#", "process_", "python_"))
    )


def headers_of(text: bytes) -> list[str]:
    """Return an exposition's HELP and TYPE lines, in order."""
    return [line for line in text.decode().splitlines() if line.startswith(("# HELP", "# TYPE"))]


@pytest.mark.parametrize("accept", [None, "application/openmetrics-text; version=1.0.0"])
def test_cached_exposition_equals_a_full_render(
    registry: CollectorRegistry, metrics: Metrics, accept: str | None
) -> None:
    metrics.suites_loaded(loaded_suites(), load_errors=0, default_interval=300.0)
    metrics.suite_finished(make_suite(make_test(), make_test("pay", outcome=Outcome.FAILED)))
    first, _ = metrics.render(accept)  # fills the cache
    metrics.suite_finished(skipped_suite(ended_at=T1))
    metrics.overrun("signup")
    cached, content_type = metrics.render(accept)
    full, full_type = render_registry(registry, accept)
    assert content_type == full_type
    assert samples_of(cached) == samples_of(full)
    assert samples_of(cached) != samples_of(first)
    names = [line.split()[2] for line in headers_of(cached) if line.startswith("# TYPE")]
    assert len(names) == len(set(names)), "a family's header appears once"
    synthetic = [h for h in headers_of(full) if " synthetic_" in h]
    assert [h for h in headers_of(cached) if " synthetic_" in h] == synthetic


def test_only_suites_that_changed_are_rendered_again(metrics: Metrics) -> None:
    metrics.suites_loaded(loaded_suites(), load_errors=0, default_interval=300.0)
    metrics.render(None)
    suites = metrics._suites  # the cache is what this test is about
    rendered_before = {name: s.cache[False] for name, s in suites.items()}  # False: text
    metrics.suite_finished(make_suite(make_test()))
    metrics.render(None)
    changed = {name for name, s in suites.items() if s.cache[False] is not rendered_before[name]}
    assert changed == {SUITE}


@pytest.mark.parametrize("options", [MetricsOptions(), DETAILED], ids=["default", "detailed"])
def test_duration_histograms_carry_run_and_trace_exemplars_in_openmetrics_only(
    registry: CollectorRegistry, options: MetricsOptions
) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from synthetic_exporter.core.results import RequestRecord

    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    request = RequestRecord(
        target="api",
        method="GET",
        path="/",
        status=200,
        duration_seconds=0.02,
        phases={"processing": 0.015, "transfer": 0.002},
    )
    metrics = Metrics(registry, CONSTANT, version="1.2.3", options=options)
    metrics.suites_loaded(loaded_suites(), load_errors=0, default_interval=300.0)
    traced = replace(make_test(duration=0.2), trace_id=trace, requests=(request,))
    untraced = make_test("pay", outcome=Outcome.SKIPPED, duration=0.0)  # not observed
    metrics.suite_finished(make_suite(traced, untraced, duration=1.5, ended_at=T1))

    text, _ = metrics.render(None)
    assert b" # {" not in text
    body, _ = metrics.render("application/openmetrics-text; version=1.0.0")
    exemplars = {
        (family.name, sample.labels.get("phase", ""), sample.labels["le"]): sample.exemplar
        for family in text_string_to_metric_families(body.decode())  # type: ignore[no-untyped-call]
        for sample in family.samples
        if sample.exemplar is not None
    }
    test_labels = {"run_id": "run-1", "trace_id": trace}
    expected = {
        ("synthetic_http_request_duration_seconds", "processing", "0.025"): test_labels,
        ("synthetic_http_request_duration_seconds", "transfer", "0.0025"): test_labels,
    }
    if not options.duration_histograms:
        assert {key: e.labels for key, e in exemplars.items()} == expected
        return
    assert {key: e.labels for key, e in exemplars.items()} == {
        ("synthetic_test_duration_seconds", "", "0.25"): test_labels,
        ("synthetic_suite_duration_seconds", "", "2.5"): {"run_id": "run-1"},
        **expected,
    }
    test_exemplar = exemplars[("synthetic_test_duration_seconds", "", "0.25")]
    assert (test_exemplar.value, float(str(test_exemplar.timestamp))) == (0.2, T0)  # its end


@dataclass(frozen=True)
class Stats:
    """A browser pool's stats, as ``BrowserPool.stats()`` returns them."""

    processes: int
    memory_bytes: int
    open_contexts: int
    restarts: int


def browser_test(*pages: PageRecord, outcome: Outcome = Outcome.PASSED) -> TestResult:
    """Return test "login" of SUITE with ``pages``."""
    return replace(make_test(outcome=outcome), pages=pages)


def test_browser_gauges_hold_the_last_page_and_the_pages_totals(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    first = make_page("/", lcp=9.0, cls=0.5, requests=3, transfer_bytes=1000)
    last = make_page("/dashboard", lcp=1.2, cls=0.05, requests=12, transfer_bytes=300_000)
    metrics.suite_finished(make_suite(browser_test(first, last)))
    assert of_test(registry, "synthetic_browser_last_vital_seconds", vital="lcp") == 1.2
    assert of_test(registry, "synthetic_browser_last_vital_seconds", vital="tbt") == 0.02
    assert of_test(registry, "synthetic_browser_last_phase_seconds", phase="ttfb") == 0.05
    assert of_test(registry, "synthetic_browser_last_cls") == 0.05
    assert of_test(registry, "synthetic_browser_last_requests") == 15
    assert of_test(registry, "synthetic_browser_last_transfer_bytes") == 301_000


def test_browser_gauges_are_replaced_per_result_and_kept_by_skips(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.suite_finished(make_suite(browser_test(make_page())))
    assert of_test(registry, "synthetic_browser_last_phase_seconds", phase="tls") == 0.01
    # A visit over a kept connection: no dns, connect or tls phase, and no CLS measured.
    reused = make_page(lcp=2.5, cls=None, phases={"ttfb": 0.04, "load": 0.3}, requests=2)
    metrics.suite_finished(make_suite(browser_test(reused, outcome=Outcome.FAILED), ended_at=T1))
    assert of_test(registry, "synthetic_browser_last_phase_seconds", phase="tls") is None
    assert of_test(registry, "synthetic_browser_last_phase_seconds", phase="ttfb") == 0.04
    assert of_test(registry, "synthetic_browser_last_vital_seconds", vital="lcp") == 2.5
    assert of_test(registry, "synthetic_browser_last_cls") is None
    assert of_test(registry, "synthetic_browser_last_requests") == 2
    # A skipped run keeps them.
    metrics.suite_finished(skipped_suite(ended_at=T1 + 300))
    assert of_test(registry, "synthetic_browser_last_vital_seconds", vital="lcp") == 2.5
    # A run without a page (it failed before opening one) has none.
    metrics.suite_finished(make_suite(browser_test(outcome=Outcome.ERROR), ended_at=T1 + 600))
    browser = [
        s
        for m in registry.collect()
        if m.name.startswith("synthetic_browser_last")
        for s in m.samples
    ]
    assert browser == []


def test_asset_responses_are_counted_per_target_edge_and_cache(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assets = (
        AssetCount("web", "LHR", "Hit", 9),
        AssetCount("web", "LHR", "Miss", 2),
        AssetCount("other", "none", "none", 1),
    )
    metrics.suite_finished(make_suite(browser_test(make_page(assets=assets))))
    metrics.suite_finished(make_suite(browser_test(make_page(assets=assets[:1])), ended_at=T1))
    counter = "synthetic_browser_asset_responses_total"
    assert value(registry, counter, target="web", pop="LHR", cache="Hit") == 18
    assert value(registry, counter, target="web", pop="LHR", cache="Miss") == 2
    assert value(registry, counter, target="other", pop="none", cache="none") == 1
    samples = [
        s for m in registry.collect() if m.name == counter.removesuffix("_total") for s in m.samples
    ]
    assert all(set(s.labels) == {*CONSTANT, "target", "pop", "cache"} for s in samples)
    assert all("suite" not in s.labels and "path" not in s.labels for s in samples)


def test_browser_pool_stats_are_read_at_scrape_time(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assert not {m.name for m in registry.collect()} & {n for n, _ in BROWSER_AGENT}
    kept = [Stats(0, 0, 0, 0)]
    metrics.watch_browser(lambda: kept[0])
    assert value(registry, "synthetic_exporter_browser_processes") == 0
    kept[0] = Stats(processes=7, memory_bytes=300_000_000, open_contexts=2, restarts=1)
    assert value(registry, "synthetic_exporter_browser_processes") == 7
    assert value(registry, "synthetic_exporter_browser_memory_bytes") == 300_000_000
    assert value(registry, "synthetic_exporter_browser_contexts") == 2
    assert value(registry, "synthetic_exporter_browser_restarts_total") == 1
    families = {(m.name, m.type) for m in registry.collect()}
    assert families >= BROWSER_AGENT
    text = metrics.render(None)[0].decode()
    assert (
        'synthetic_exporter_browser_contexts{environment="prod",location="eu-west-1"} 2.0' in text
    )


def test_series_a_browser_check_adds_as_docs_metrics_md_says() -> None:
    """One page: 7 phases, 3 vitals, CLS, requests, bytes; its assets count per target."""

    def series(*pages: PageRecord) -> tuple[int, int]:
        metrics = Metrics(CollectorRegistry(), CONSTANT, version="1.2.3")
        metrics.suite_finished(make_suite(browser_test(*pages)))
        lines = samples_of(metrics.render(None)[0])
        per_target = [line for line in lines if "asset_responses" in line]
        own = [line for line in lines if not line.startswith("synthetic_exporter_")]
        return len(own) - len(per_target), len(per_target)

    phases = dict.fromkeys(("dns", "connect", "tls", "ttfb", "download", "load"), 0.01)
    full = make_page(phases={**phases, "dom_content_loaded": 0.1})
    without, _ = series()
    one, _ = series(full)
    assert one - without == 13
    reused = make_page(
        phases={"ttfb": 0.01, "download": 0.01, "dom_content_loaded": 0.1, "load": 0.1}
    )
    assert series(reused)[0] - without == 10
    assert series(full, full)[0] == one
    assets = (AssetCount("web", "LHR", "Hit", 8), AssetCount("web", "LHR", "Miss", 2))
    assert series(make_page(assets=assets))[1] == 2
