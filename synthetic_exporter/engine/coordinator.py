"""Run suites as a dependency graph: dependents after dependencies, never a suite twice at once.

A dependent suite waits for a dependency that is running (or reserved to run in the same
batch), then reads the dependency's latest result: if it did not pass, the dependent is
skipped with the reason, which makes skips transitive.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import anyio
from loguru import logger

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.results import Outcome, SuiteResult
from synthetic_exporter.engine.graph import with_dependencies
from synthetic_exporter.engine.invoke import describe_error, is_real_cancel
from synthetic_exporter.engine.runner import Engine, Listener, SuiteRun, unrun_suite


def new_run_id() -> str:
    """Return a short random run id."""
    return uuid.uuid4().hex[:12]


def dependency_problem(suite: Suite, latest: Mapping[str, SuiteResult]) -> str:
    """Return why ``suite`` must be skipped given its dependencies' latest results, or ''."""
    for dep in suite.depends_on:
        result = latest.get(dep)
        if result is None:
            return f"dependency {dep!r} has not run yet"
        if result.outcome is Outcome.SKIPPED:
            return f"dependency {dep!r} was skipped: {result.skip_reason or 'all tests skipped'}"
        if not result.outcome.ok:
            return f"dependency {dep!r} failed"
    return ""


@dataclass(slots=True, kw_only=True)
class Coordinator:
    """Starts suite runs: bounded concurrency, dependency order, no overlap."""

    engine: Engine
    suites: Mapping[str, Suite]
    listener: Listener
    concurrency: int
    latest: dict[str, SuiteResult] = field(default_factory=dict)
    running: dict[str, anyio.Event] = field(default_factory=dict)
    _limiter: anyio.CapacityLimiter | None = None

    def reserve(self, names: Iterable[str]) -> list[str]:
        """Mark suites as about to run; return those that were not already running."""
        free = [n for n in names if n not in self.running]
        for name in free:
            self.running[name] = anyio.Event()
        return free

    async def run_reserved(
        self, name: str, scheduled_at: float | None = None, lag_seconds: float = 0.0
    ) -> SuiteResult:
        """Run a reserved suite once its dependencies settle; publish and return its result."""
        suite = self.suites[name]
        done = self.running[name]
        try:
            for dep in suite.depends_on:
                if dep in self.running:
                    await self.running[dep].wait()
            run_id = new_run_id()
            when = time.time() if scheduled_at is None else scheduled_at
            reason = dependency_problem(suite, self.latest)
            if reason:
                result = unrun_suite(suite, run_id, reason, when)
                for test in result.tests:
                    self.listener.test_finished(test)
            else:
                async with self.limiter:
                    run = SuiteRun(
                        engine=self.engine,
                        suite=suite,
                        run_id=run_id,
                        listener=self.listener,
                        scheduled_at=when,
                        lag_seconds=lag_seconds,
                    )
                    result = await self._contained(run)
            self.latest[name] = result
            self.listener.suite_finished(result)
            return result
        finally:
            del self.running[name]
            done.set()

    async def _contained(self, run: SuiteRun) -> SuiteResult:
        """Return the run's result; an error escaping the runner (a bug) errors the suite."""
        try:
            return await run.run()
        except BaseException as exc:
            if await is_real_cancel(exc):
                raise
            logger.opt(exception=exc).bind(suite=run.suite.name, run_id=run.run_id).error(
                f"suite run {run.suite.name} crashed: {describe_error(exc)}"
            )
            reason = f"the agent failed to run the suite: {describe_error(exc)}"
            return unrun_suite(run.suite, run.run_id, reason, run.scheduled_at, Outcome.ERROR)

    async def run_until_failure(self, names: Iterable[str], reason: str) -> None:
        """Run suites one at a time in dependency order; after a bad test, skip the rest."""
        failed = False
        for name in with_dependencies(self.suites, names):
            if failed:
                result = unrun_suite(self.suites[name], new_run_id(), reason, time.time())
                for test in result.tests:
                    self.listener.test_finished(test)
                self.listener.suite_finished(result)
                continue
            self.reserve([name])
            result = await self.run_reserved(name)
            failed = any(test.outcome.bad for test in result.tests)

    async def idle(self) -> None:
        """Return once no suite runs (or waits to run)."""
        while self.running:
            await next(iter(self.running.values())).wait()

    async def run_batch(self, names: Iterable[str]) -> list[SuiteResult]:
        """Run suites (and their dependencies) now, concurrently where the graph allows."""
        wanted = with_dependencies(self.suites, names)
        reserved = self.reserve(wanted)
        results: dict[str, SuiteResult] = {}

        async def one(name: str) -> None:
            results[name] = await self.run_reserved(name)

        async with anyio.create_task_group() as group:
            for name in reserved:
                group.start_soon(one, name)
        return [results[n] for n in wanted if n in results]

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """Return the limiter of suites running at once (made lazily, inside the event loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        return self._limiter
