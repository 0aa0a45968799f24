"""pytest's view of check files: a file node, a node per suite, an item per test."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from synthetic_exporter.app.pytest_session import OnDemandRuns
from synthetic_exporter.authoring.suite import Suite, TestDef
from synthetic_exporter.core.results import LoadError, Outcome, TestResult
from synthetic_exporter.engine.loader import LoadWarning
from synthetic_exporter.exporter.report import captured_log

RUNS_KEY = pytest.StashKey[OnDemandRuns]()


class CheckFailed(Exception):
    """A test that failed, errored or timed out in the engine; pytest reports it as failed."""

    def __init__(self, result: TestResult) -> None:
        super().__init__(result.message)
        self.result = result


def failure_text(result: TestResult) -> str:
    """Return a failed test's report as ``run --once`` prints it: message, then traceback."""
    return "\n".join(part for part in (result.message, result.traceback) if part)


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


class CheckFile(pytest.File):
    """A check file: its suites, or its load errors as a collection error."""

    suites: list[Suite]
    errors: list[LoadError]
    load_warnings: list[LoadWarning]

    @classmethod
    def from_loaded(
        cls,
        parent: pytest.Collector,
        path: Any,
        suites: list[Suite],
        errors: list[LoadError],
        load_warnings: list[LoadWarning],
    ) -> CheckFile:
        """Make the node for one file from what the loader found in it."""
        node: CheckFile = cls.from_parent(parent, path=path)
        node.suites, node.errors, node.load_warnings = suites, errors, load_warnings
        return node

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        """Return a node per suite; raise the file's load errors; warn its likely mistakes."""
        for warning in self.load_warnings:
            warnings.warn_explicit(
                pytest.PytestCollectionWarning(warning.message),
                category=None,
                filename=warning.file,
                lineno=warning.line,
            )
        if self.errors:
            raise self.CollectError("\n".join(str(e) for e in self.errors))
        return [SuiteNode.from_suite(self, suite) for suite in self.suites]


class NotCollected(pytest.File):
    """Stands in for pytest's own module of a check file named like a test file."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        """Return nothing: the file's :class:`CheckFile` collects it."""
        return []


class SuiteNode(pytest.Collector):
    """A suite: its tags are markers (for ``-m``), its tests are items."""

    suite: Suite

    @classmethod
    def from_suite(cls, parent: CheckFile, suite: Suite) -> SuiteNode:
        """Make the node of one suite."""
        node: SuiteNode = cls.from_parent(parent, name=suite.name)
        node.suite = suite
        for tag in suite.tags:
            node.add_marker(tag)
        return node

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        """Return an item per test, in the suite's order."""
        return [CheckItem.from_test(self, test) for test in self.suite.tests]


class CheckItem(pytest.Item):
    """One test of a suite, run by the agent's engine."""

    suite: Suite
    test: TestDef
    result: TestResult | None

    @classmethod
    def from_test(cls, parent: SuiteNode, test: TestDef) -> CheckItem:
        """Make the item of one test."""
        item: CheckItem = cls.from_parent(parent, name=test.name)
        item.suite, item.test, item.result = parent.suite, test, None
        return item

    @property
    def full_name(self) -> str:
        """Return the agent's name of the test, ``suite/test``."""
        return f"{self.suite.name}/{self.test.name}"

    def runtest(self) -> None:
        """Read the test's result (running its suite first if needed) and report it."""
        runs = self.config.stash[RUNS_KEY]
        result = runs.result(self.suite.name, self.test.name)
        self.result = result
        subtests = runs.subtests(self.suite.name, self.test.name)
        if subtests:
            lines = [
                f"{r.name} {r.outcome.value.upper()} {_first_line(r.message)}" for r in subtests
            ]
            self.add_report_section("call", "subtests", "\n".join(x.rstrip() for x in lines))
        self.user_properties.append(("outcome", result.outcome.value))
        if result.attempts > 1:
            self.user_properties.append(("attempts", result.attempts))
        log = "\n".join(captured_log(result)[1:])
        if log:
            self.add_report_section("call", "t.log", log)
        for failure in result.cleanup_failures:
            warnings.warn_explicit(
                pytest.PytestWarning(
                    f"{self.full_name}: clean-up {failure.name} failed: {failure.message}"
                ),
                category=None,
                filename=self.suite.file,
                lineno=self._line() + 1,
            )
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.message)
        if result.outcome.bad:
            raise CheckFailed(result)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        """Return the engine's report of a failed test, or pytest's for anything else."""
        if isinstance(excinfo.value, CheckFailed):
            return failure_text(excinfo.value.result)
        return super().repr_failure(excinfo)

    def _line(self) -> int:
        return int(self.test.func.__code__.co_firstlineno) - 1

    def reportinfo(self) -> tuple[Any, int, str]:
        """Return the test's file, line and ``suite/test`` name."""
        return self.path, self._line(), self.full_name


def dependency_order(items: list[pytest.Item], order: list[str]) -> Iterator[pytest.Item]:
    """Yield items with check items rearranged among their own places, suites in ``order``."""
    checks = [item for item in items if isinstance(item, CheckItem)]
    rank = {name: i for i, name in enumerate(order)}
    places = sorted(
        range(len(checks)), key=lambda i: (rank.get(checks[i].suite.name, len(rank)), i)
    )
    ordered = iter([checks[i] for i in places])
    for item in items:
        yield next(ordered) if isinstance(item, CheckItem) else item
