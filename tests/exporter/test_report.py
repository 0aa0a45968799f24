"""The console report of ``run --once``: counts line, failures, plurals."""

from __future__ import annotations

import io
import os
from dataclasses import replace

from synthetic_exporter.core.results import LoadError, LogLine, Outcome, RunResult
from synthetic_exporter.exporter.report import ConsoleReporter, plural, use_colour
from tests.factories import make_suite, make_test


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


def test_colour_is_on_only_for_a_terminal_without_no_color() -> None:
    main, secondary = os.openpty()
    with os.fdopen(secondary, "w") as terminal, io.StringIO() as pipe:
        assert use_colour("auto", terminal, {})
        assert not use_colour("auto", terminal, {"NO_COLOR": "1"})
        assert use_colour("auto", terminal, {"NO_COLOR": ""})  # no-color.org: empty is unset
        assert not use_colour("auto", pipe, {})
        assert use_colour("yes", pipe, {"NO_COLOR": "1"})
        assert not use_colour("no", terminal, {})
    os.close(main)


def live_lines(verbosity: int, colour: bool = False) -> str:
    """Return what the reporter prints for a passed and a failed test."""
    stream = io.StringIO()
    reporter = ConsoleReporter(stream, verbosity=verbosity, colour=colour)
    reporter.test_finished(make_test("s", "ok", Outcome.PASSED))
    reporter.test_finished(make_test("s", "bad", Outcome.FAILED, message="assert 1 == 2\nmore"))
    return stream.getvalue()


def test_verbosity_changes_the_live_lines() -> None:
    assert live_lines(0).splitlines() == ["s/ok PASSED [100 ms]", "s/bad FAILED [100 ms]"]
    assert live_lines(-1).splitlines() == ["s/bad FAILED [100 ms]"]
    assert live_lines(1).splitlines()[-1] == "    assert 1 == 2"


def test_colour_paints_outcomes_and_the_counts_line() -> None:
    assert "s/ok \x1b[32mPASSED\x1b[0m" in live_lines(0, colour=True)
    assert "s/bad \x1b[31mFAILED\x1b[0m" in live_lines(0, colour=True)
    assert "\x1b" not in live_lines(0)
    suite = make_suite("s", ("a", Outcome.PASSED))
    green = RunResult(run_id="r", suites=(suite,), started_at=0.0, ended_at=1.0)
    reporter = ConsoleReporter(io.StringIO(), colour=True)
    assert reporter.summary(green).splitlines()[-1].startswith("\x1b[32m=")
    empty = RunResult(run_id="r", suites=(), started_at=0.0, ended_at=0.0)
    assert reporter.summary(empty).splitlines()[-1].startswith("\x1b[33m=")


def failed_with_logs(count: int, text: str = "step") -> RunResult:
    """Return a run of one failed test that logged ``count`` lines."""
    logs = tuple(LogLine(i / 10, "INFO", f"{text} {i}") for i in range(count))
    test = replace(make_test("s", "bad", Outcome.FAILED, message="assert 1 == 2"), logs=logs)
    suite = replace(make_suite("s"), tests=(test,))
    return RunResult(run_id="r", suites=(suite,), started_at=0.0, ended_at=1.0)


def test_captured_log_follows_each_failure_bounded() -> None:
    summary = ConsoleReporter(io.StringIO()).summary(failed_with_logs(3))
    assert " Captured log " in summary
    assert "  0.100s INFO    step 1" in summary
    assert summary.index("assert 1 == 2") < summary.index("Captured log")
    long = ConsoleReporter(io.StringIO()).summary(failed_with_logs(25, "x" * 500))
    assert "... (5 earlier lines not shown)" in long
    shown = [line for line in long.splitlines() if "INFO" in line]
    assert len(shown) == 20
    assert shown[0].startswith("  0.500s INFO")  # the last 20 of 25
    assert all(len(line) == 200 and line.endswith("...") for line in shown)


def test_no_captured_log_without_logs() -> None:
    assert "Captured log" not in ConsoleReporter(io.StringIO()).summary(failed_with_logs(0))


def test_a_failed_browser_test_says_where_its_screenshot_and_trace_are() -> None:
    suite = make_suite("shop", ("checkout/pay", Outcome.FAILED), ("browse", Outcome.FAILED))
    failed = replace(suite.tests[0], artifacts=("screenshot.png", "trace.zip"))
    suite = replace(suite, run_id="ab12", tests=(failed, suite.tests[1]))
    run = RunResult(run_id="r", suites=(suite,), started_at=0.0, ended_at=1.0)
    text = ConsoleReporter(io.StringIO()).summary(run)
    assert "artifacts/ab12/checkout__pay/screenshot.png" in text
    assert "artifacts/ab12/checkout__pay/trace.zip" in text
    assert "playwright show-trace" in text
    browse = text[text.index("shop/browse (failed)") :]
    assert "artifacts/" not in browse  # a test without artifacts says nothing of them
