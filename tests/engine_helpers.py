"""Run suites in-process for engine tests."""

from __future__ import annotations

from collections.abc import Iterable

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.results import SuiteResult, TestResult
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.wiring import KeepingFanout, open_engine


class Recorder(KeepingFanout):
    """Keeps every suite result, and every test result in the order they finished."""

    def __init__(self) -> None:
        super().__init__()
        self.tests: list[TestResult] = []

    def test_finished(self, result: TestResult) -> None:
        self.tests.append(result)


async def run_suites(
    settings: Settings, suites: Iterable[Suite], names: Iterable[str] | None = None
) -> Recorder:
    """Run suites once (all, or ``names`` and their dependencies) and record the results."""
    by_name = {s.name: s for s in suites}
    recorder = Recorder()
    async with open_engine(settings, by_name) as engine:
        coordinator = Coordinator(
            engine=engine, suites=by_name, listener=recorder, concurrency=settings.concurrency
        )
        await coordinator.run_batch(list(by_name) if names is None else names)
    return recorder


def by_name(results: Iterable[TestResult]) -> dict[str, TestResult]:
    """Index test results by ``suite/test``."""
    return {r.full_name: r for r in results}


def suite_result(recorder: Recorder, name: str) -> SuiteResult:
    """Return the one result of suite ``name``."""
    (found,) = [s for s in recorder.suites if s.suite == name]
    return found
