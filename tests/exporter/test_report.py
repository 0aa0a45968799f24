"""The console report of ``run --once``: counts line, failures, plurals."""

from __future__ import annotations

import io

from synthetic_exporter.core.results import LoadError, Outcome, RunResult
from synthetic_exporter.exporter.report import ConsoleReporter, plural
from tests.factories import make_suite


def counts_line(run: RunResult) -> str:
    """Return the last line of the summary."""
    return ConsoleReporter(io.StringIO()).summary(run).splitlines()[-1]


def test_plural_counts_nouns_but_not_participles() -> None:
    assert plural(1, "error") == "1 error"
    assert plural(2, "error") == "2 errors"
    assert plural(0, "test") == "0 tests"
    assert plural(1, "load error") == "1 load error"
    assert plural(3, "timeout") == "3 timeouts"
    assert plural(2, "passed") == "2 passed"
    assert plural(2, "flaky") == "2 flaky"


def test_counts_line_uses_plurals_as_pytest() -> None:
    suite = make_suite(
        "s",
        ("a", Outcome.ERROR),
        ("b", Outcome.ERROR),
        ("c", Outcome.TIMEOUT),
        ("d", Outcome.PASSED),
    )
    errors = (LoadError("x.py", 1, "boom"),)
    run = RunResult(run_id="r", suites=(suite,), started_at=0.0, ended_at=1.5, load_errors=errors)
    line = counts_line(run)
    assert "1 passed, 2 errors, 1 timeout, 1 load error in 1.50s" in line


def test_an_empty_run_says_no_tests_ran() -> None:
    empty = RunResult(run_id="r", suites=(), started_at=0.0, ended_at=0.0)
    assert "no tests ran in 0.00s" in counts_line(empty)
