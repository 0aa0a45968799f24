"""Failing tests in the agent's log: when they start, reminders while they last, recoveries.

A test that goes from passing (or never run) to failed, error or timeout logs one ERROR line;
while it keeps failing the same way, a WARNING reminder at most once per ``reminder`` seconds;
a different failure (another outcome, or a message that differs in more than its numbers) logs
an ERROR line at once; the first passing run after failures logs an INFO recovery line. Skipped
tests change nothing. A suite skipped as a whole (a dependency failed) follows the same rule at
suite level, at WARNING. Every line carries the run id of the suite run it reports.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from loguru import logger

from synthetic_exporter.core.durations import format_duration
from synthetic_exporter.core.results import Outcome, SuiteResult, TestResult

__all__ = ["DEFAULT_REMINDER_SECONDS", "FailureLogger", "failure_shape", "rough_duration"]

DEFAULT_REMINDER_SECONDS = 3600.0
K = TypeVar("K")

# Numbers and hex ids (timings, counts, request ids, addresses, timestamps) change from run to
# run within the same failure; they are left out when telling whether a failure is new.
_VOLATILE = re.compile(r"0x[0-9a-f]+|[0-9a-f]*\d[0-9a-f]*(?:\.\d+)?", re.IGNORECASE)


def failure_shape(outcome: str, message: str) -> str:
    """Return what identifies a failure: its outcome and its message without numbers or ids."""
    return f"{outcome}: {_VOLATILE.sub('#', message)}"


def rough_duration(seconds: float) -> str:
    """Render a failure's length: whole seconds, or whole minutes from an hour up ('2h5m')."""
    step = 60 if seconds >= 3600 else 1
    return format_duration(round(seconds / step) * step)


def iso_utc(timestamp: float) -> str:
    """Return a wall-clock timestamp as ISO 8601 UTC to the second, e.g. 2026-12-07T16:00:00Z."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Streak:
    """Consecutive bad runs of one test (or skipped runs of one suite)."""

    since: float
    """When the first bad run was reported."""
    runs: int
    """How many bad runs so far, the latest included."""
    logged_at: float
    """When the streak was last logged (start, change or reminder)."""
    shape: str
    """The failure last logged, as :func:`failure_shape` gives it."""


class Change(enum.Enum):
    """What a bad run means for its streak."""

    STARTED = "started"
    CHANGED = "changed"
    LASTING = "lasting"
    """Same failure, and the reminder is due."""
    QUIET = "quiet"
    """Same failure, logged recently."""


def advance(streaks: dict[K, Streak], key: K, shape: str, now: float, reminder: float) -> Change:
    """Count one more bad run of ``key`` in ``streaks``; return whether and why to log it."""
    streak = streaks.get(key)
    if streak is None:
        streaks[key] = Streak(since=now, runs=1, logged_at=now, shape=shape)
        return Change.STARTED
    streak.runs += 1
    if streak.shape != shape:
        change = Change.CHANGED
    elif now - streak.logged_at >= reminder:
        change = Change.LASTING
    else:
        return Change.QUIET
    streak.logged_at, streak.shape = now, shape
    return change


def runs_of(count: int, kind: str) -> str:
    """Return e.g. '1 failed run' or '3 failed runs'."""
    return f"{count} {kind} run{'' if count == 1 else 's'}"


class FailureLogger:
    """Logs failures when they start, change and end, and reminds of them while they last.

    ``reminder`` is the least time between two lines about the same unchanged failure;
    ``now`` the wall clock (injected by tests).
    """

    def __init__(
        self,
        reminder: float = DEFAULT_REMINDER_SECONDS,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.reminder = reminder
        self.now = now
        self.failing: dict[tuple[str, str], Streak] = {}
        self.skipped: dict[str, Streak] = {}

    def test_finished(self, result: TestResult) -> None:
        """Do nothing: failures are logged with their run id when the suite ends."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Log the suite's failures that started, changed, lasted or ended in this run."""
        now = self.now()
        if result.skip_reason:
            self._suite_skipped(result, now)
            return
        self._suite_ran(result, now)
        for test in result.tests:
            if test.outcome.bad:
                self._test_failed(result.run_id, test, now)
            elif test.outcome.ok:
                self._test_passed(result.run_id, test, now)

    def _test_failed(self, run_id: str, test: TestResult, now: float) -> None:
        key = (test.suite, test.name)
        shape = failure_shape(test.outcome.value, test.message)
        change = advance(self.failing, key, shape, now, self.reminder)
        if change is Change.QUIET:
            return
        streak = self.failing[key]
        what = {
            Change.STARTED: "started failing",
            Change.CHANGED: "failing differently",
            Change.LASTING: f"still failing for {rough_duration(now - streak.since)}"
            f" ({runs_of(streak.runs, 'failed')})",
        }[change]
        logger.bind(
            suite=test.suite,
            test=test.name,
            run_id=run_id,
            outcome=test.outcome.value,
            duration_seconds=test.duration_seconds,
            failing_since=iso_utc(streak.since),
            failures=streak.runs,
        ).log(
            "WARNING" if change is Change.LASTING else "ERROR",
            f"{test.full_name} {what}: {test.outcome.value}: {test.message}",
        )

    def _test_passed(self, run_id: str, test: TestResult, now: float) -> None:
        streak = self.failing.pop((test.suite, test.name), None)
        if streak is None:
            return
        lasted = now - streak.since
        logger.bind(
            suite=test.suite,
            test=test.name,
            run_id=run_id,
            outcome=test.outcome.value,
            duration_seconds=test.duration_seconds,
            failed_for_seconds=round(lasted, 3),
            failures=streak.runs,
        ).info(
            f"{test.full_name} recovered after {rough_duration(lasted)}"
            f" ({runs_of(streak.runs, 'failed')})"
        )

    def _suite_skipped(self, result: SuiteResult, now: float) -> None:
        shape = failure_shape(Outcome.SKIPPED.value, result.skip_reason)
        change = advance(self.skipped, result.suite, shape, now, self.reminder)
        if change is Change.QUIET:
            return
        streak = self.skipped[result.suite]
        what = {
            Change.STARTED: "skipped",
            Change.CHANGED: "skipped for another reason",
            Change.LASTING: f"still skipped for {rough_duration(now - streak.since)}"
            f" ({runs_of(streak.runs, 'skipped')})",
        }[change]
        logger.bind(
            suite=result.suite,
            run_id=result.run_id,
            reason=result.skip_reason,
            skipped_since=iso_utc(streak.since),
            skips=streak.runs,
        ).warning(f"suite {result.suite} {what}: {result.skip_reason}")

    def _suite_ran(self, result: SuiteResult, now: float) -> None:
        streak = self.skipped.pop(result.suite, None)
        if streak is None:
            return
        lasted = now - streak.since
        logger.bind(
            suite=result.suite,
            run_id=result.run_id,
            skipped_for_seconds=round(lasted, 3),
            skips=streak.runs,
        ).info(
            f"suite {result.suite} runs again after {rough_duration(lasted)}"
            f" ({runs_of(streak.runs, 'skipped')})"
        )
