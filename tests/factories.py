"""Build result records for consumer tests (metrics, health, history)."""

from __future__ import annotations

from synthetic_exporter.core.results import Outcome, SuiteResult, TestResult, suite_outcome


def make_test(
    suite: str,
    name: str,
    outcome: Outcome,
    *,
    at: float = 1000.0,
    duration: float = 0.1,
    message: str = "",
) -> TestResult:
    """Return one test result that ended at ``at``."""
    return TestResult(
        suite=suite,
        name=name,
        outcome=outcome,
        duration_seconds=duration,
        started_at=at - duration,
        ended_at=at,
        attempts=1,
        message=message,
    )


def make_suite(
    suite: str,
    *tests: tuple[str, Outcome],
    at: float = 1000.0,
    skip_reason: str = "",
    message: str = "",
) -> SuiteResult:
    """Return a suite result with the given test outcomes, ending at ``at``."""
    results = tuple(make_test(suite, n, o, at=at, message=message) for n, o in tests)
    outcome = Outcome.SKIPPED if skip_reason else suite_outcome(results)
    return SuiteResult(
        suite=suite,
        run_id="run1",
        outcome=outcome,
        tests=results,
        started_at=at - 1,
        ended_at=at,
        duration_seconds=1.0,
        scheduled_at=at - 1,
        lag_seconds=0.0,
        skip_reason=skip_reason,
    )
