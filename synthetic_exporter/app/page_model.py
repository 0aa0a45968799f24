"""What the status pages show, computed from plain data: no HTML, no I/O.

The index puts root causes first: failed (and stale) suites, each followed by the suites skipped
because of it, then flaky suites, then passing ones, then the rest (pending, skipped for other
reasons). Inside a suite the tests that did not pass come first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from synthetic_exporter.app.charts import Sparkline, milliseconds, sparkline
from synthetic_exporter.app.page_visits import ArtifactLink, PageRow, artifact_links, page_row
from synthetic_exporter.app.waterfall import Waterfall, waterfall

BAD = frozenset({"failed", "error", "timeout"})
OK = frozenset({"passed", "flaky"})
BARS = 30
MESSAGE_LINES = 3
DAY = 86_400.0
WEEK = 7 * DAY
_ROOT_CAUSE = re.compile(r"dependency '([^']+)' failed")
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.-]")
Key = tuple[str, str]


class RunPoint(Protocol):
    """One test in one suite run (the run store's ``TestRun``)."""

    @property
    def run_id(self) -> str:
        """The suite run's id."""
        ...

    @property
    def outcome(self) -> str:
        """How the test ended."""
        ...

    @property
    def started_at(self) -> float:
        """Wall-clock start."""
        ...

    @property
    def duration_seconds(self) -> float:
        """The test's duration."""
        ...

    @property
    def message(self) -> str:
        """The test's message (redacted)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredHistory:
    """What the run store knows about every test: recent runs (newest first) and aggregates."""

    recent: Mapping[Key, Sequence[RunPoint]] = field(default_factory=dict)
    uptime_day: Mapping[Key, float] = field(default_factory=dict)
    uptime_week: Mapping[Key, float] = field(default_factory=dict)
    failing_since: Mapping[Key, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Moment:
    """A point in time shown both ways: ``5m ago`` and ``2026-12-07 16:33:59 UTC``."""

    timestamp: float
    relative: str
    absolute: str
    iso: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TestRow:
    """One test on a page."""

    __test__ = False  # not a pytest test class

    suite: str
    test: str
    anchor: str
    outcome: str
    message: str
    bars: tuple[RunPoint, ...]
    """The last :data:`BARS` runs, oldest first."""
    uptime_day: str
    uptime_week: str
    failing_since: Moment | None
    sparkline: Sparkline | None
    last_run_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteGroup:
    """A suite with its tests; a failed suite carries the suites skipped because of it."""

    suite: str
    status: str
    kind: str
    skip_reason: str
    run_id: str
    tests: tuple[TestRow, ...]
    dependents: tuple[SuiteGroup, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexPage:
    """The status page: the overall status, a headline during an outage, suites in order."""

    status: str
    environment: str
    headline: TestRow | None
    groups: tuple[SuiteGroup, ...]
    load_errors: tuple[str, ...]
    counts: Mapping[str, int]
    updated: Moment


def moment(timestamp: float, now: float) -> Moment:
    """Return ``timestamp`` as a relative and an absolute (UTC) time."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return Moment(
        timestamp, ago(now - timestamp), f"{when:%Y-%m-%d %H:%M:%S} UTC", when.isoformat()
    )


def ago(seconds: float) -> str:
    """Return a duration in the past as ``12s ago``, ``5m ago``, ``3h ago`` or ``2d ago``."""
    seconds = max(seconds, 0.0)
    for unit, size in (("d", DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds // size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def anchor(suite: str, test: str) -> str:
    """Return the stable ``id`` of a test's row (``t-signup.create_customer``)."""
    return "t-" + _NOT_IN_ID.sub("-", f"{suite}.{test}")


def first_lines(message: str, lines: int = MESSAGE_LINES) -> str:
    """Return the first ``lines`` lines of a message, marked when cut."""
    parts = message.strip().splitlines()
    return "\n".join(parts[:lines]) + ("\n…" if len(parts) > lines else "")


def percent(share: float | None) -> str:
    """Return an uptime share as ``99.5%`` (``—`` without runs)."""
    if share is None:
        return "—"
    return f"{share * 100:.1f}%" if share < 1 else "100%"


def root_cause(skip_reason: str) -> str | None:
    """Return the failed suite a transitive skip reason names, if any."""
    found = _ROOT_CAUSE.findall(skip_reason)
    return found[-1] if found else None


def clock(timestamp: float) -> str:
    """Return a wall-clock time as ``2026-12-07 16:33:59 UTC`` (cheaper than datetime)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def bar_title(outcome: str, started_at: float, duration_seconds: float) -> str:
    """Return a bar's tooltip: outcome, time and duration."""
    return f"{outcome} · {clock(started_at)} · {duration_seconds * 1000:.0f} ms"


def test_row(
    suite: str, test: str, latest: Mapping[str, Any] | None, stored: StoredHistory, now: float
) -> TestRow:
    """Return one test's row from its latest result (if in memory) and its stored history."""
    key = (suite, test)
    runs = stored.recent.get(key, ())
    newest = runs[0] if runs else None
    outcome = latest["outcome"] if latest else (newest.outcome if newest else "pending")
    message = latest["message"] if latest else (newest.message if newest else "")
    since = stored.failing_since.get(key)
    durations = [r.duration_seconds for r in reversed(runs[:BARS]) if r.outcome != "skipped"]
    return TestRow(
        suite=suite,
        test=test,
        anchor=anchor(suite, test),
        outcome=outcome,
        message=first_lines(message),
        bars=tuple(reversed(runs[:BARS])),
        uptime_day=percent(stored.uptime_day.get(key)),
        uptime_week=percent(stored.uptime_week.get(key)),
        failing_since=moment(since, now) if since is not None and outcome in BAD else None,
        sparkline=sparkline(durations),
        last_run_id=newest.run_id if newest else "",
    )


def _kind(status: str, outcome: str) -> str:
    if status in ("fail", "stale"):
        return "failed" if status == "fail" else "stale"
    if status == "pass":
        return "flaky" if outcome == "flaky" else "passing"
    return status  # skipped, pending


def suite_group(
    suite: str,
    status: str,
    latest: Mapping[str, Any] | None,
    stored: StoredHistory,
    now: float,
    stored_tests: Sequence[str] = (),
) -> SuiteGroup:
    """Return one suite's group, tests that did not pass first (otherwise in run order).

    Without a latest result (the agent restarted) the tests are those the store knows.
    """
    tests = {t["name"]: t for t in latest["tests"]} if latest else {}
    names = list(tests) or sorted(stored_tests)
    rows = [test_row(suite, name, tests.get(name), stored, now) for name in names]
    rows.sort(key=lambda row: row.outcome not in BAD)
    return SuiteGroup(
        suite=suite,
        status=status,
        kind=_kind(status, latest["outcome"] if latest else ""),
        skip_reason=latest["skip_reason"] if latest else "",
        run_id=latest["run_id"] if latest else (rows[0].last_run_id if rows else ""),
        tests=tuple(rows),
    )


ORDER = ("failed", "stale", "flaky", "passing", "skipped", "pending")


def index_page(
    *,
    health: Mapping[str, Any],
    latest: Sequence[Mapping[str, Any]],
    stored: StoredHistory,
    environment: str,
    now: float,
) -> IndexPage:
    """Return the status page from the ``/healthz`` body, the latest results and the store."""
    by_suite = {r["suite"]: r for r in latest}
    stored = with_health_failures(stored, health)
    stored_tests: dict[str, list[str]] = {}
    for suite, test in stored.recent:
        stored_tests.setdefault(suite, []).append(test)
    groups = [
        suite_group(name, status, by_suite.get(name), stored, now, stored_tests.get(name, ()))
        for name, status in sorted(health["suites"].items())
    ]
    failed = {g.suite for g in groups if g.kind == "failed"}
    beneath: dict[str, list[SuiteGroup]] = {}
    rest: list[SuiteGroup] = []
    for group in groups:
        cause = root_cause(group.skip_reason) if group.kind == "skipped" else None
        if cause in failed:
            beneath.setdefault(str(cause), []).append(group)
        else:
            rest.append(group)
    ordered = sorted(
        (replace(g, dependents=tuple(beneath.get(g.suite, ()))) for g in rest),
        key=lambda g: (ORDER.index(g.kind), _oldest_failure(g), g.suite),
    )
    first_bad = next((t for g in ordered for t in g.tests if t.outcome in BAD), None)
    counts = {kind: sum(1 for g in groups if g.kind == kind) for kind in ORDER}
    return IndexPage(
        status=health["status"],
        environment=environment,
        headline=first_bad,
        groups=tuple(ordered),
        load_errors=tuple(health.get("load_errors", ())),
        counts=counts,
        updated=moment(now, now),
    )


def with_health_failures(stored: StoredHistory, health: Mapping[str, Any]) -> StoredHistory:
    """Add the failures ``/healthz`` knows of (since the agent started) that the store lacks."""
    in_memory = {tuple(f["test"].split("/", 1)): f["since"] for f in health.get("failed", ())}
    since = {**in_memory, **stored.failing_since}
    return replace(stored, failing_since=since)


def _oldest_failure(group: SuiteGroup) -> float:
    starts = [t.failing_since.timestamp for t in group.tests if t.failing_since]
    return min(starts, default=float("inf"))


@dataclass(frozen=True, slots=True, kw_only=True)
class TestPage:
    """A test's history page."""

    __test__ = False

    row: TestRow
    runs: tuple[tuple[RunPoint, Moment], ...]


def test_page(
    suite: str, test: str, runs: Sequence[RunPoint], stored: StoredHistory, now: float
) -> TestPage:
    """Return a test's page from its recent runs (newest first)."""
    history = StoredHistory(
        recent={(suite, test): runs},
        uptime_day=stored.uptime_day,
        uptime_week=stored.uptime_week,
        failing_since=stored.failing_since,
    )
    row = test_row(suite, test, None, history, now)
    return TestPage(row=row, runs=tuple((r, moment(r.started_at, now)) for r in runs))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTest:
    """One test on a run page, with its waterfall, browser pages and artifacts."""

    test: Mapping[str, Any]
    anchor: str
    duration: str
    waterfall: Waterfall | None
    pages: tuple[PageRow, ...] = ()
    artifacts: tuple[ArtifactLink, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPage:
    """One suite run (its JSON form, as the run store and ``/api/v1/runs/{id}`` give it)."""

    run: Mapping[str, Any]
    started: Moment
    duration: str
    tests: tuple[RunTest, ...]


def run_page(run: Mapping[str, Any], now: float) -> RunPage:
    """Return a suite run's page."""
    return RunPage(
        run=run,
        started=moment(run["started_at"], now),
        duration=milliseconds(run["duration_seconds"]),
        tests=tuple(
            RunTest(
                test=test,
                anchor=anchor(run["suite"], test["name"]),
                duration=milliseconds(test["duration_seconds"]),
                waterfall=waterfall(test),
                pages=tuple(page_row(page) for page in test.get("pages", ())),
                artifacts=artifact_links(run["run_id"], test),
            )
            for test in run["tests"]
        ),
    )
