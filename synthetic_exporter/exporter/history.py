"""Recent suite runs, bounded, for ``/api/v1/results`` and ``/api/v1/runs``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from synthetic_exporter.core.results import SuiteResult, TestResult, to_jsonable


def summary(result: SuiteResult) -> dict[str, Any]:
    """Return a short JSON view of one suite run: outcome, timing and failed tests."""
    return {
        "suite": result.suite,
        "run_id": result.run_id,
        "outcome": result.outcome.value,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
        "duration_seconds": result.duration_seconds,
        "lag_seconds": result.lag_seconds,
        "skip_reason": result.skip_reason,
        "tests": {t.name: t.outcome.value for t in result.tests},
        "failures": [
            {"test": t.name, "outcome": t.outcome.value, "message": t.message}
            for t in result.failed_tests
        ],
    }


@dataclass(slots=True)
class History:
    """The latest result of every suite and the last ``size`` runs of all suites."""

    size: int
    latest: dict[str, SuiteResult] = field(default_factory=dict)
    runs: deque[SuiteResult] = field(init=False)

    def __post_init__(self) -> None:
        self.runs = deque(maxlen=self.size)

    def test_finished(self, result: TestResult) -> None:
        """Ignore single tests: suite results carry them."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Keep a suite run."""
        self.latest[result.suite] = result
        self.runs.append(result)

    def results(self) -> dict[str, Any]:
        """Return the latest full result of every suite, JSON-ready."""
        return {"suites": [to_jsonable(r) for r in self.latest.values()]}

    def recent(self, suite: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """Return recent runs, newest first, optionally of one suite."""
        runs = [r for r in reversed(self.runs) if suite is None or r.suite == suite]
        return {"runs": [summary(r) for r in runs[:limit]]}
