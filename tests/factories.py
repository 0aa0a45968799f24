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
    return TestResult(suite, name, outcome, duration, at - duration, at, 1, message)


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
    return SuiteResult(suite, "run1", outcome, results, at - 1, at, 1.0, at - 1, 0.0, skip_reason)
