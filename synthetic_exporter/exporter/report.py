"""Output of ``run --once``: live lines, a pytest-like summary, JUnit XML and JSON."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from synthetic_exporter.core.results import (
    ARTIFACTS_DIR,
    LoadError,
    Outcome,
    RunResult,
    SuiteResult,
    TestResult,
    dir_of_test,
    to_jsonable,
)

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

WIDTH = 78
ORDER = (
    Outcome.PASSED,
    Outcome.FLAKY,
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.TIMEOUT,
    Outcome.SKIPPED,
)


COUNTABLE = frozenset({"error", "timeout", "load error", "suite", "test", "earlier line"})
CAPTURED_LINES, CAPTURED_CHARS = 20, 200


def plural(count: int, word: str) -> str:
    """Return ``"1 error"``, ``"2 errors"``; participles (``passed``, ``flaky``) never change."""
    suffix = "s" if count != 1 and word in COUNTABLE else ""
    return f"{count} {word}{suffix}"


GREEN, YELLOW, RED, RESET = "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[0m"
COLOURS = {
    Outcome.PASSED: GREEN,
    Outcome.FLAKY: YELLOW,
    Outcome.SKIPPED: YELLOW,
    Outcome.FAILED: RED,
    Outcome.ERROR: RED,
    Outcome.TIMEOUT: RED,
}


def use_colour(choice: str, stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Decide ``--color=yes|no|auto``: auto means a terminal and no ``NO_COLOR`` (no-color.org)."""
    if choice != "auto":
        return choice == "yes"
    return stream.isatty() and not environ.get("NO_COLOR")


def rule(title: str, char: str = "=") -> str:
    """Return a pytest-style banner line."""
    text = f" {title} "
    side = max((WIDTH - len(text)) // 2, 3)
    return f"{char * side}{text}{char * side}"


@dataclass(slots=True)
class ConsoleReporter:
    """Prints one line per finished test, as it finishes.

    ``verbosity`` is ``-v`` minus ``-q``: below 0 only the tests that did not pass get a
    line; above 0 a failed test's line is followed by its message's first line.
    """

    stream: TextIO
    started: float = field(default_factory=time.monotonic)
    verbosity: int = 0
    colour: bool = False

    def paint(self, text: str, colour: str) -> str:
        """Return ``text`` in ``colour`` when colour is on."""
        return f"{colour}{text}{RESET}" if self.colour else text

    def test_finished(self, result: TestResult) -> None:
        """Print the test's line."""
        if self.verbosity < 0 and result.outcome is Outcome.PASSED:
            return
        detail = f" ({result.message})" if result.outcome is Outcome.SKIPPED else ""
        retry = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        outcome = self.paint(result.outcome.value.upper(), COLOURS[result.outcome])
        self.stream.write(
            f"{result.full_name} {outcome}"
            f" [{result.duration_seconds * 1000:.0f} ms{retry}]{detail}\n"
        )
        if self.verbosity > 0 and result.outcome.bad and result.message:
            self.stream.write(f"    {result.message.splitlines()[0]}\n")
        self.stream.flush()

    def suite_finished(self, result: SuiteResult) -> None:
        """Print nothing: the tests' lines say it all."""

    def summary(self, run: RunResult) -> str:
        """Return failures, load errors and the closing counts line."""
        lines: list[str] = []
        problems = [t for t in run.all_tests if t.outcome.bad]
        flaky = [t for t in run.all_tests if t.outcome is Outcome.FLAKY]
        cleanup = [t for t in run.all_tests if t.cleanup_failures]
        if run.load_errors:
            lines.append(rule("LOAD ERRORS"))
            lines.extend(str(e) for e in run.load_errors)
        if problems:
            lines.append(rule("FAILURES"))
            run_ids = {t.full_name: s.run_id for s in run.suites for t in s.tests}
            for test in problems:
                lines.append(rule(f"{test.full_name} ({test.outcome.value})", "_"))
                lines.append(test.message)
                if test.traceback:
                    lines.append(test.traceback)
                lines.extend(captured_log(test))
                lines.extend(kept_files(test, run_ids.get(test.full_name, "")))
        if flaky:
            lines.append(rule("FLAKY (passed after a retry)"))
            lines.extend(f"{t.full_name}: {t.message}" for t in flaky)
        if cleanup or any(s.janitor_failures for s in run.suites):
            lines.append(rule("CLEAN-UP FAILURES"))
            for test in cleanup:
                lines.extend(
                    f"{test.full_name}: {f.name}: {f.message}" for f in test.cleanup_failures
                )
            for suite in run.suites:
                lines.extend(
                    f"{suite.suite}: {f.name}: {f.message}" for f in suite.janitor_failures
                )
        counts = Counter(t.outcome for t in run.all_tests)
        parts = [plural(counts[o], o.value) for o in ORDER if counts[o]]
        if run.load_errors:
            parts.append(plural(len(run.load_errors), "load error"))
        elapsed = run.ended_at - run.started_at
        closing = rule(f"{', '.join(parts) or 'no tests ran'} in {elapsed:.2f}s")
        lines.append(self.paint(closing, self.closing_colour(run)))
        return "\n".join(lines) + "\n"

    @staticmethod
    def closing_colour(run: RunResult) -> str:
        """Return the counts line's colour, as pytest: red on a failure, yellow on nothing."""
        tests = run.all_tests
        if run.load_errors or any(t.outcome.bad for t in tests):
            return RED
        if not tests or any(t.outcome is not Outcome.PASSED for t in tests):
            return YELLOW
        return GREEN


def captured_log(test: TestResult) -> list[str]:
    """Return a failure's ``t.log`` lines under a pytest-like banner, bounded.

    Only the last :data:`CAPTURED_LINES` are shown, each cut at :data:`CAPTURED_CHARS`.
    """
    if not test.logs:
        return []
    lines = [rule("Captured log", "-")]
    hidden = len(test.logs) - CAPTURED_LINES
    if hidden > 0:
        lines.append(f"... ({plural(hidden, 'earlier line')} not shown)")
    for line in test.logs[-CAPTURED_LINES:]:
        text = f"{line.offset_seconds:7.3f}s {line.level:<7} {line.message}"
        cut = text if len(text) <= CAPTURED_CHARS else f"{text[: CAPTURED_CHARS - 3]}..."
        lines.append(cut)
    return lines


def kept_files(test: TestResult, run_id: str) -> list[str]:
    """Return where a failed browser test's screenshot and trace are, in the state directory."""
    if not test.artifacts:
        return []
    folder = f"{ARTIFACTS_DIR}/{run_id}/{dir_of_test(test.name)}"
    lines = [rule("Kept in the state directory", "-")]
    lines.extend(f"{folder}/{name}" for name in test.artifacts)
    if any(name.endswith(".zip") for name in test.artifacts):
        lines.append("(open a trace with: playwright show-trace <state dir>/<path>)")
    return lines


def write_json(run: RunResult, path: Path) -> None:
    """Write the run's results as JSON."""
    path.write_text(json.dumps(to_jsonable(run), indent=2) + "\n", encoding="utf-8")


def _testcase(parent: ET.Element, test: TestResult) -> None:
    import xml.etree.ElementTree as ET

    case = ET.SubElement(
        parent,
        "testcase",
        classname=test.suite,
        name=test.name,
        time=f"{test.duration_seconds:.6f}",
    )
    if test.outcome is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=test.message)
    elif test.outcome in (Outcome.ERROR, Outcome.TIMEOUT):
        node = ET.SubElement(case, "error", message=test.message, type=test.outcome.value)
        node.text = test.traceback
    elif test.outcome is Outcome.FAILED:
        node = ET.SubElement(case, "failure", message=test.message)
        node.text = test.traceback
    if test.logs:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(f"{line.offset_seconds:.3f} {line.message}" for line in test.logs)


def write_junit(run: RunResult, path: Path) -> None:
    """Write the run's results as JUnit XML, a ``testsuite`` per suite."""
    import xml.etree.ElementTree as ET  # only here: the serving agent never loads it (0.5 MiB)

    root = ET.Element("testsuites", name="synthetic-exporter")
    for suite in run.suites:
        counts = Counter(t.outcome for t in suite.tests)
        node = ET.SubElement(
            root,
            "testsuite",
            name=suite.suite,
            tests=str(len(suite.tests)),
            failures=str(counts[Outcome.FAILED]),
            errors=str(counts[Outcome.ERROR] + counts[Outcome.TIMEOUT]),
            skipped=str(counts[Outcome.SKIPPED]),
            time=f"{suite.duration_seconds:.6f}",
        )
        for test in suite.tests:
            _testcase(node, test)
    if run.load_errors:
        node = ET.SubElement(root, "testsuite", name="load", tests=str(len(run.load_errors)))
        for error in run.load_errors:
            case = ET.SubElement(node, "testcase", classname="load", name=error.file)
            ET.SubElement(case, "error", message=error.message, type="load")
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def format_load_errors(errors: tuple[LoadError, ...]) -> str:
    """Return load errors one per line."""
    return "".join(f"{e}\n" for e in errors)
