"""The agent's engine inside a pytest session: its own event loop in a thread, suites on demand.

pytest calls one item at a time, synchronously; the engine is asynchronous and runs a suite as
a whole (its tests in order, then its clean-ups and janitors). So the first item of a suite runs
the suite, narrowed to the items pytest selected, with its dependencies first (whole, as
``run --once -k`` does), and every item of it then reads its own result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from anyio.from_thread import BlockingPortal, start_blocking_portal

from synthetic_exporter.app.eventloop import backend_options
from synthetic_exporter.app.statedir import hold_state_dir
from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.results import SuiteResult, TestResult
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.runner import Engine
from synthetic_exporter.engine.selection import with_tests
from synthetic_exporter.engine.wiring import open_engine, sweep_leftovers


@dataclass(slots=True)
class ResultBook:
    """The engine's listener: every finished test and suite, by name."""

    tests: dict[tuple[str, str], TestResult] = field(default_factory=dict)
    suites: dict[str, SuiteResult] = field(default_factory=dict)

    def test_finished(self, result: TestResult) -> None:
        """Keep a test's result."""
        self.tests[(result.suite, result.name)] = result

    def suite_finished(self, result: SuiteResult) -> None:
        """Keep a suite's result."""
        self.suites[result.suite] = result


def narrowed(suites: Mapping[str, Suite], selected: Mapping[str, list[str]]) -> dict[str, Suite]:
    """Return the suites, those with selected tests holding only those (in suite order)."""
    out = dict(suites)
    for name, tests in selected.items():
        out[name] = with_tests(suites[name], [t for t in suites[name].tests if t.name in tests])
    return out


@dataclass(slots=True)
class OnDemandRuns:
    """Runs suites when pytest first asks for one of their results; opened lazily."""

    settings: Settings
    suites: Mapping[str, Suite]
    book: ResultBook = field(default_factory=ResultBook)
    _stack: contextlib.ExitStack | None = None
    _portal: BlockingPortal | None = None
    _coordinator: Coordinator | None = None

    def open(self, selected: Mapping[str, list[str]]) -> None:
        """Hold the state directory, start the event loop and engine, sweep leftovers."""
        stack = contextlib.ExitStack()
        with stack:
            stack.enter_context(hold_state_dir(self.settings.state_dir))
            portal = stack.enter_context(
                start_blocking_portal("asyncio", backend_options=backend_options())
            )
            engine: Engine = stack.enter_context(
                portal.wrap_async_context_manager(open_engine(self.settings, self.suites))
            )
            portal.call(sweep_leftovers, engine)
            self._coordinator = Coordinator(
                engine=engine,
                suites=narrowed(self.suites, selected),
                listener=self.book,
                concurrency=1,
            )
            self._portal = portal
            self._stack = stack.pop_all()

    def result(self, suite: str, test: str) -> TestResult:
        """Return a test's result, running its suite (and its dependencies) first if needed."""
        self._ensure(suite)
        return self.book.tests[(suite, test)]

    def subtests(self, suite: str, test: str) -> list[TestResult]:
        """Return the results of a test's subtests (``t.run``), in the order they finished."""
        prefix = f"{test}/"
        return [r for (s, n), r in self.book.tests.items() if s == suite and n.startswith(prefix)]

    def _ensure(self, name: str) -> None:
        coordinator, portal = self._coordinator, self._portal
        if coordinator is None or portal is None:
            raise RuntimeError("the synthetic engine is not open")
        if name in coordinator.latest:
            return
        for dep in coordinator.suites[name].depends_on:
            self._ensure(dep)
        coordinator.reserve([name])
        running = portal.start_task_soon(coordinator.run_reserved, name)
        try:
            running.result()
        except KeyboardInterrupt:  # Ctrl-C: cancel the suite and wait for its cleanups
            running.cancel()
            portal.call(coordinator.idle)
            raise

    def close(self) -> None:
        """Close the engine (clients, ledger), stop the event loop, release the state directory."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
