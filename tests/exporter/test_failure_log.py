"""FailureLogger: a failure logged when it starts, reminded, re-logged when it changes, ended."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from synthetic_exporter.core.results import Outcome, SuiteResult
from synthetic_exporter.exporter.failure_log import FailureLogger, failure_shape, rough_duration
from tests.factories import make_suite

HOUR = 3600.0


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@dataclasses.dataclass(frozen=True)
class Line:
    """One captured log line."""

    level: str
    message: str
    fields: dict[str, Any]


def lines_of(caplog: pytest.LogCaptureFixture) -> list[Line]:
    """Return the captured lines and forget them."""
    lines = [
        Line(r.levelname, r.getMessage().strip(), dict(r.extra))  # type: ignore[attr-defined]
        for r in caplog.records
    ]
    caplog.clear()
    return lines


def run(
    outcome: Outcome, run_id: str, message: str = "assert 503 == 200", suite: str = "api"
) -> SuiteResult:
    """Return a run of suite ``suite`` whose test ``login`` ended with ``outcome``."""
    result = make_suite(suite, ("login", outcome), message=message)
    return dataclasses.replace(result, run_id=run_id)


def test_a_failure_is_logged_once_then_reminded_then_recovered(
    caplog_loguru: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = FailureLogger(reminder=HOUR, now=clock)

    failures.suite_finished(run(Outcome.PASSED, "r0"))
    assert lines_of(caplog_loguru) == []

    failures.suite_finished(run(Outcome.FAILED, "r1"))
    (started,) = lines_of(caplog_loguru)
    assert started.level == "ERROR"
    assert started.message == "api/login started failing: failed: assert 503 == 200"
    assert started.fields == {
        "suite": "api",
        "test": "login",
        "run_id": "r1",
        "outcome": "failed",
        "duration_seconds": 0.1,
        "failing_since": "2027-01-15T08:00:00Z",
        "failures": 1,
    }

    for minute in range(1, 60):  # every minute for the rest of the hour: nothing new
        clock.advance(60)
        failures.suite_finished(run(Outcome.FAILED, f"r1-{minute}"))
    assert lines_of(caplog_loguru) == []

    clock.advance(60)  # one hour after the first line
    failures.suite_finished(run(Outcome.FAILED, "r2"))
    (reminder,) = lines_of(caplog_loguru)
    assert reminder.level == "WARNING"
    assert reminder.message == (
        "api/login still failing for 1h (61 failed runs): failed: assert 503 == 200"
    )
    assert reminder.fields["run_id"] == "r2"
    assert reminder.fields["failures"] == 61
    assert reminder.fields["failing_since"] == "2027-01-15T08:00:00Z"

    clock.advance(HOUR - 1)  # the next reminder is due an hour after the last one
    failures.suite_finished(run(Outcome.FAILED, "r3"))
    assert lines_of(caplog_loguru) == []
    clock.advance(1)
    failures.suite_finished(run(Outcome.FAILED, "r4"))
    assert [line.message.split(":")[0] for line in lines_of(caplog_loguru)] == [
        "api/login still failing for 2h (63 failed runs)"
    ]

    clock.advance(12 * 60)
    failures.suite_finished(run(Outcome.PASSED, "r5"))
    (recovered,) = lines_of(caplog_loguru)
    assert recovered.level == "INFO"
    assert recovered.message == "api/login recovered after 2h12m (63 failed runs)"
    assert recovered.fields["run_id"] == "r5"
    assert recovered.fields["failed_for_seconds"] == 2 * HOUR + 12 * 60
    assert recovered.fields["outcome"] == "passed"

    failures.suite_finished(run(Outcome.PASSED, "r6"))
    failures.suite_finished(run(Outcome.TIMEOUT, "r7", "test timed out after 30s"))
    assert [(line.level, line.message) for line in lines_of(caplog_loguru)] == [
        ("ERROR", "api/login started failing: timeout: test timed out after 30s")
    ]


def test_a_different_failure_is_news_but_different_numbers_are_not(
    caplog_loguru: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = FailureLogger(reminder=HOUR, now=clock)
    failures.suite_finished(run(Outcome.FAILED, "r1", "took 5.12s, over 5s (request 3fa9c2e1)"))
    clock.advance(60)
    failures.suite_finished(run(Outcome.FAILED, "r2", "took 7.9s, over 5s (request 77b01d4f)"))
    assert [line.fields["run_id"] for line in lines_of(caplog_loguru)] == ["r1"]

    clock.advance(60)
    failures.suite_finished(run(Outcome.FAILED, "r3", "no 'id' in the response"))
    clock.advance(60)
    failures.suite_finished(run(Outcome.ERROR, "r4", "no 'id' in the response"))
    changed = lines_of(caplog_loguru)
    assert [(line.level, line.message) for line in changed] == [
        ("ERROR", "api/login failing differently: failed: no 'id' in the response"),
        ("ERROR", "api/login failing differently: error: no 'id' in the response"),
    ]
    assert [line.fields["failures"] for line in changed] == [3, 4]
    assert {line.fields["failing_since"] for line in changed} == {"2027-01-15T08:00:00Z"}

    clock.advance(HOUR - 60)  # the reminder counts from the last line, not from the start
    failures.suite_finished(run(Outcome.ERROR, "r5", "no 'id' in the response"))
    assert lines_of(caplog_loguru) == []


def test_skipped_tests_change_nothing(caplog_loguru: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    failures = FailureLogger(reminder=HOUR, now=clock)
    failures.suite_finished(run(Outcome.FAILED, "r1"))
    caplog_loguru.clear()
    clock.advance(60)
    failures.suite_finished(run(Outcome.SKIPPED, "r2", "skipped by the check"))
    assert lines_of(caplog_loguru) == []  # neither a recovery nor a new failure
    clock.advance(60)
    failures.suite_finished(run(Outcome.FLAKY, "r3"))  # a flaky pass is a pass
    (recovered,) = lines_of(caplog_loguru)
    assert recovered.message == "api/login recovered after 2m (1 failed run)"
    assert recovered.fields["outcome"] == "flaky"


def test_tests_and_suites_are_tracked_apart(caplog_loguru: pytest.LogCaptureFixture) -> None:
    failures = FailureLogger(reminder=HOUR, now=Clock())
    failures.suite_finished(run(Outcome.FAILED, "a1", suite="a"))
    failures.suite_finished(run(Outcome.FAILED, "b1", suite="b"))
    failures.suite_finished(run(Outcome.PASSED, "a2", suite="a"))
    assert [line.message.split(" ", 1) for line in lines_of(caplog_loguru)] == [
        ["a/login", "started failing: failed: assert 503 == 200"],
        ["b/login", "started failing: failed: assert 503 == 200"],
        ["a/login", "recovered after 0s (1 failed run)"],
    ]


def skipped_run(run_id: str, reason: str = "dependency 'auth' failed") -> SuiteResult:
    """Return a run of suite ``orders`` skipped as a whole, with its tests skipped."""
    result = make_suite("orders", ("create", Outcome.SKIPPED), skip_reason=reason, message=reason)
    return dataclasses.replace(result, run_id=run_id)


def test_a_suite_skipped_by_its_dependency_is_one_line_with_the_same_rule(
    caplog_loguru: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = FailureLogger(reminder=HOUR, now=clock)
    failures.suite_finished(skipped_run("s1"))
    (skipped,) = lines_of(caplog_loguru)
    assert (skipped.level, skipped.message) == (
        "WARNING",
        "suite orders skipped: dependency 'auth' failed",
    )
    assert skipped.fields == {
        "suite": "orders",
        "run_id": "s1",
        "reason": "dependency 'auth' failed",
        "skipped_since": "2027-01-15T08:00:00Z",
        "skips": 1,
    }

    clock.advance(HOUR / 2)
    failures.suite_finished(skipped_run("s2"))
    assert lines_of(caplog_loguru) == []
    clock.advance(HOUR / 2)
    failures.suite_finished(skipped_run("s3"))
    clock.advance(60)
    failures.suite_finished(skipped_run("s4", "dependency 'auth' was skipped: maintenance"))
    assert [(line.level, line.message) for line in lines_of(caplog_loguru)] == [
        ("WARNING", "suite orders still skipped for 1h (3 skipped runs): dependency 'auth' failed"),
        (
            "WARNING",
            "suite orders skipped for another reason: dependency 'auth' was skipped: maintenance",
        ),
    ]

    clock.advance(60)
    ran = dataclasses.replace(make_suite("orders", ("create", Outcome.PASSED)), run_id="s5")
    failures.suite_finished(ran)
    (again,) = lines_of(caplog_loguru)
    assert (again.level, again.message) == (
        "INFO",
        "suite orders runs again after 1h2m (4 skipped runs)",
    )
    assert again.fields == {
        "suite": "orders",
        "run_id": "s5",
        "skipped_for_seconds": HOUR + 120,
        "skips": 4,
    }


def test_a_new_logger_logs_every_failure_as_it_starts(
    caplog_loguru: pytest.LogCaptureFixture,
) -> None:
    """``run --once`` makes a logger per run: each of its failures is logged."""
    for run_id in ("once1", "once2"):
        FailureLogger().suite_finished(run(Outcome.FAILED, run_id))
    assert [line.fields["run_id"] for line in lines_of(caplog_loguru)] == ["once1", "once2"]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.4, "0s"), (59.6, "1m"), (754, "12m34s"), (7199, "2h"), (7260.4, "2h1m"), (90000, "1d1h")],
)
def test_failure_lengths_are_rounded_for_people(seconds: float, shown: str) -> None:
    assert rough_duration(seconds) == shown


def test_a_failure_shape_ignores_numbers_and_ids_only() -> None:
    assert failure_shape("failed", "took 5.1s at 0x7f3a (id 9c2e41aa)") == failure_shape(
        "failed", "took 12s at 0x1b (id 00ffee12)"
    )
    assert failure_shape("failed", "no 'id'") != failure_shape("failed", "no 'name'")
    assert failure_shape("failed", "x") != failure_shape("error", "x")
