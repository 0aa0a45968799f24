"""Failed tests in the agent's log: one line each, with suite, test, run id and outcome."""

from __future__ import annotations

from loguru import logger

from synthetic_exporter.core.results import SuiteResult, TestResult


class FailureLogger:
    """Logs each failed test once, with suite, test, run id, outcome, message and duration."""

    def test_finished(self, result: TestResult) -> None:
        """Do nothing: failures are logged with their run id when the suite ends."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Log the suite's failures."""
        for test in result.failed_tests:
            logger.bind(
                suite=result.suite,
                test=test.name,
                run_id=result.run_id,
                outcome=test.outcome.value,
                duration_seconds=test.duration_seconds,
            ).error(f"{test.full_name} {test.outcome.value}: {test.message}")
