"""``/healthz``: tell whether the last completed run of every suite passed.

Statuses, most severe first: ``fail`` (a suite's last run failed), ``stale`` (a suite has no
completed run within 2x its interval), ``pending`` (a suite has not completed its first run
yet), ``pass``. Only ``pass`` answers 200. A suite skipped because a dependency failed is
listed with its reason but does not fail by itself: its dependency already does. Load errors
are listed but do not fail the check: they are the agent's configuration problem, alerted on
separately, not the system's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from synthetic_exporter.core.results import LoadError, Outcome, SuiteResult, TestResult

STALE_FACTOR = 2.0


@dataclass(slots=True, kw_only=True)
class Health:
    """Keeps what ``/healthz`` needs from the stream of results.

    Example::

        health = Health(intervals={"signup": 60.0}, started_at=time.time())
        health.suite_finished(result)
        code, body = health.report()
    """

    intervals: Mapping[str, float]
    started_at: float
    load_errors: tuple[LoadError, ...] = ()
    latest: dict[str, SuiteResult] = field(default_factory=dict)
    failing_since: dict[str, float] = field(default_factory=dict)

    def test_finished(self, result: TestResult) -> None:
        """Ignore single tests: suite results carry them."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Remember a suite's latest result and when each of its failures began."""
        self.latest[result.suite] = result
        for test in result.tests:
            if test.outcome.bad:
                self.failing_since.setdefault(test.full_name, test.ended_at)
            else:
                self.failing_since.pop(test.full_name, None)

    def suite_status(self, name: str, now: float) -> str:
        """Return one suite's status: pass, fail, skipped, pending or stale."""
        result = self.latest.get(name)
        horizon = STALE_FACTOR * self.intervals[name]
        last = result.ended_at if result else self.started_at
        if now - last > horizon:
            return "stale"
        if result is None:
            return "pending"
        if result.outcome is Outcome.SKIPPED:
            return "skipped"
        return "pass" if result.outcome.ok else "fail"

    def report(self, now: float | None = None) -> tuple[int, dict[str, Any]]:
        """Return the HTTP status and JSON body of ``/healthz``."""
        now = time.time() if now is None else now
        statuses = {name: self.suite_status(name, now) for name in self.intervals}
        present = set(statuses.values())
        overall = next((s for s in ("fail", "stale", "pending") if s in present), "pass")
        results = [self.latest[n] for n in statuses if n in self.latest]
        body: dict[str, Any] = {
            "status": overall,
            "suites": statuses,
            "failed": [
                {
                    "test": test.full_name,
                    "outcome": test.outcome.value,
                    "message": test.message,
                    "since": self.failing_since.get(test.full_name, test.ended_at),
                }
                for result in results
                for test in result.failed_tests
            ],
            "skipped": [
                {"suite": r.suite, "reason": r.skip_reason}
                for r in results
                if r.outcome is Outcome.SKIPPED
            ],
            "stale": sorted(n for n, s in statuses.items() if s == "stale"),
            "load_errors": [str(e) for e in self.load_errors],
            "last_run_started_at": max((r.started_at for r in results), default=None),
            "last_run_ended_at": max((r.ended_at for r in results), default=None),
        }
        return (200 if overall == "pass" else 503), body
