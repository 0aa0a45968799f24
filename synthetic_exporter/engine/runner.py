"""Run one suite: its tests in order, with timeouts, retries, subtests, cleanups and janitors.

The runner produces immutable results and hands them to a :class:`Listener`; it never reads
what consumers do with them.
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import ssl
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread
import httpx

from synthetic_exporter.authoring.context import FatalStop, Harness, SkipStop, T
from synthetic_exporter.authoring.janitor import new_key
from synthetic_exporter.authoring.suite import Suite, TestDef, TestFunction
from synthetic_exporter.browser import BrowserPool
from synthetic_exporter.core.frames import check_frames, format_frames
from synthetic_exporter.core.results import (
    ARTIFACTS_DIR,
    CleanupFailure,
    Outcome,
    SuiteResult,
    TestResult,
    dir_of_test,
    suite_outcome,
)
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.engine.invoke import (
    CLEANUP_DEADLINE,
    call_bounded,
    describe_error,
    is_real_cancel,
)
from synthetic_exporter.engine.ledger import Ledger
from synthetic_exporter.engine.sweeper import Sweeper
from synthetic_exporter.http.clients import Targets
from synthetic_exporter.http.timing import CURRENT_SINK
from synthetic_exporter.http.tls import handshake_problem
from synthetic_exporter.http.tracecontext import CURRENT_TRACE, new_trace_id

TRACEBACK_FRAMES = 5
MESSAGE_MAX_LINES = 20
MESSAGE_MAX_CHARS = 2000
"""Bounds of an exception's failure message (pytest's explanations can be long)."""


class Listener(Protocol):
    """Receives results as they are produced."""

    def test_finished(self, result: TestResult) -> None:
        """Take one finished test (or subtest)."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Take one finished (or skipped) suite run."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    """What every suite run of one agent process shares."""

    settings: Settings
    targets: Targets
    ledger: Ledger
    sweeper: Sweeper
    redact: Callable[[str], str] = lambda s: s
    browser: BrowserPool | None = None
    """The agent's shared browser (``t.page()``); it starts at the first page."""


@dataclass(slots=True, kw_only=True)
class _Attempt:
    name: str
    outcome: Outcome
    message: str
    traceback: str
    duration: float
    started_at: float
    ended_at: float
    harness: Harness
    cleanup_failures: list[CleanupFailure]
    cleanup_seconds: float
    trace_id: str
    artifacts: tuple[str, ...] = ()


def short_traceback(exc: BaseException) -> str:
    """Return the frames of an exception that point into check code, innermost last.

    Each frame shows its whole statement: a multi-line ``assert`` in full.
    """
    frames = check_frames(traceback.extract_tb(exc.__traceback__))
    return format_frames(frames[-TRACEBACK_FRAMES:])


def _first_leaf(exc: BaseException) -> BaseException:
    """Return the most telling exception inside (possibly nested) exception groups."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [_first_leaf(e) for e in exc.exceptions]
    for kind in (SkipStop, FatalStop, AssertionError, Exception):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0]


def _certificate_problem(exc: BaseException) -> str | None:
    """Return a clear message when a connection failed TLS certificate verification."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    where = ""
    if isinstance(exc, httpx.RequestError):
        with contextlib.suppress(RuntimeError):
            where = f" of {exc.request.url.host}:{exc.request.url.port or ''}".rstrip(":")
    reason = cause.verify_message or str(cause)
    return f"TLS certificate{where} not accepted: {reason} (certificate verify failed)"


def bounded_message(message: str) -> str:
    """Cut a failure message to :data:`MESSAGE_MAX_LINES` lines and :data:`MESSAGE_MAX_CHARS`.

    Whole lines go, replaced by a ``... (N more lines)`` line; trailing spaces go too.
    """
    lines = [line.rstrip() for line in message.splitlines()]
    kept: list[str] = []
    size = 0
    for line in lines[:MESSAGE_MAX_LINES]:
        if kept and size + len(line) > MESSAGE_MAX_CHARS:
            break
        kept.append(line[:MESSAGE_MAX_CHARS])
        size += len(line) + 1
    if more := len(lines) - len(kept):
        kept.append(f"... ({more} more lines)")
    return "\n".join(kept)


def classify(exc: BaseException, harness: Harness) -> tuple[Outcome, str, str]:
    """Return the outcome, message and traceback for an exception a test raised."""
    leaf = _first_leaf(exc)
    if isinstance(leaf, SkipStop) and not harness.failed:
        return Outcome.SKIPPED, leaf.message, ""
    if isinstance(leaf, SkipStop | FatalStop):
        return Outcome.FAILED, "; ".join(harness.failures), ""
    problem = _certificate_problem(leaf) or handshake_problem(leaf) or describe_error(leaf)
    message = bounded_message(harness.redact(problem))
    tb = harness.redact(short_traceback(leaf))
    if isinstance(leaf, AssertionError):
        return Outcome.FAILED, "; ".join([*harness.failures, message]), tb
    if isinstance(leaf, httpx.TimeoutException):
        return Outcome.TIMEOUT, message, tb
    return Outcome.ERROR, message, tb


Clock = tuple[float, float, BaseException | None]


def _timed_sync_call(func: TestFunction, context: T, harness: Harness) -> Clock:
    start = harness.started = time.monotonic()
    try:
        func(context)
    except BaseException as exc:  # handed back to the event loop, which classifies it
        return start, time.monotonic(), exc
    return start, time.monotonic(), None


async def _timed_call(func: TestFunction, context: T, harness: Harness) -> Clock:
    """Call a test, timing only the function itself (async inline, sync in a worker thread)."""
    if not inspect.iscoroutinefunction(func):
        return await anyio.to_thread.run_sync(
            _timed_sync_call, func, context, harness, abandon_on_cancel=True
        )
    start = harness.started = time.monotonic()
    try:
        await func(context)
    except BaseException as exc:  # any of it is the test's error, but the agent's own cancel
        end = time.monotonic()
        if await is_real_cancel(exc):
            raise
        return start, end, exc
    return start, time.monotonic(), None


@dataclass(slots=True)
class _RunTracker:
    """Writes ``t.intend`` and ``t.track`` calls of one suite run to the ledger."""

    suite: Suite
    ledger: Ledger
    run_id: str

    def intend(self, kind: str) -> str:
        self._require_janitor(kind)
        if kind not in self.suite.orphan_finders:
            raise LookupError(
                f"suite {self.suite.name!r} has no orphan listing for {kind!r}, so nothing could"
                f" find a {kind!r} by its key: register one with"
                f" @<the Suite variable>.orphans({kind!r})"
            )
        key = new_key(self.run_id)
        self.ledger.intend(self.suite.name, kind, key, self.run_id)
        return key

    def track(
        self, kind: str, resource_id: str, data: dict[str, Any], key: str | None = None
    ) -> None:
        self._require_janitor(kind)
        if not resource_id:
            raise ValueError(f"t.track({kind!r}, ...) needs the resource's id, got an empty one")
        if key is None:
            self.ledger.add(self.suite.name, kind, resource_id, data, self.run_id)
        else:
            self.ledger.resolve(self.suite.name, kind, key, resource_id, data, self.run_id)

    def _require_janitor(self, kind: str) -> None:
        if kind not in self.suite.janitors:
            raise LookupError(
                f"suite {self.suite.name!r} has no janitor for {kind!r}: register one with"
                f" @<the Suite variable>.janitor({kind!r})"
            )


@dataclass(slots=True, kw_only=True)
class SuiteRun:
    """One run of one suite. Implements the subtest runner that ``T.run`` calls."""

    engine: Engine
    suite: Suite
    run_id: str
    listener: Listener
    scheduled_at: float = field(default_factory=time.time)
    lag_seconds: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)
    results: list[TestResult] = field(default_factory=list)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    _deadline: float = float("inf")

    @property
    def suite_timeout(self) -> float:
        """Return the time limit of the whole run."""
        return self.suite.timeout or self.engine.settings.suite_timeout

    @property
    def interval(self) -> float:
        """Return the suite's interval: its cleanups and janitors must end within it."""
        return self.suite.interval or self.engine.settings.interval

    def test_timeout(self, test: TestDef) -> float:
        """Return a test's time limit."""
        return test.timeout or self.suite.test_timeout or self.engine.settings.test_timeout

    async def run(self) -> SuiteResult:
        """Run every test in order, then the janitors; return the suite's result."""
        started_at, start = time.time(), time.monotonic()
        self._deadline = anyio.current_time() + self.suite_timeout
        # Every cleanup and janitor of the run shares one budget: until the next slot.
        budget = CLEANUP_DEADLINE.set(anyio.current_time() + self.interval)
        janitor_failures: list[CleanupFailure] = []
        try:
            async with self.engine.targets.for_run() as self.clients:
                await self._run_tests()
        finally:
            entries = self.engine.ledger.for_run(self.run_id)
            janitor_failures = await self.engine.sweeper.clean(entries)
            CLEANUP_DEADLINE.reset(budget)
        tests = tuple(self.results)
        return SuiteResult(
            suite=self.suite.name,
            run_id=self.run_id,
            outcome=suite_outcome(tests),
            tests=tests,
            started_at=started_at,
            ended_at=time.time(),
            duration_seconds=round(time.monotonic() - start, 6),
            scheduled_at=self.scheduled_at,
            lag_seconds=self.lag_seconds,
            janitor_failures=tuple(janitor_failures),
        )

    async def _run_tests(self) -> None:
        stop_reason = ""
        for test in self.suite.tests:
            if not stop_reason and anyio.current_time() >= self._deadline:
                stop_reason = f"suite timeout of {self.suite_timeout:g}s exceeded"
            if stop_reason:
                self._emit(self._skipped(test.name, stop_reason))
                continue
            result = await self._run_test(test)
            if result.outcome.bad and self.suite.stop_on_failure:
                stop_reason = f"earlier test {test.name!r} {result.outcome.value}"

    async def run_subtest(
        self, parent: Harness, parent_name: str, name: str, func: TestFunction
    ) -> bool:
        """Run ``func`` as ``parent_name/name`` within the parent's time limit."""
        full_name, started = f"{parent_name}/{self.engine.redact(name)}", time.time()
        try:
            attempt = await self._attempt(full_name, func, parent.deadline)
        except anyio.get_cancelled_exc_class():
            # The parent's own scope fired first (same deadline): report the subtest anyway.
            message = "timed out: the parent test's time limit was reached"
            now = time.time()
            cut = TestResult(
                suite=self.suite.name,
                name=full_name,
                outcome=Outcome.TIMEOUT,
                duration_seconds=round(now - started, 6),
                started_at=started,
                ended_at=now,
                attempts=1,
                message=message,
                trace_id=CURRENT_TRACE.get() or "",
            )
            self._emit(cut)
            raise
        result = self._result(attempt, attempts=1)
        self._emit(result)
        if result.outcome.bad:
            parent.fail(f"subtest {name!r} {result.outcome.value}: {result.message}")
        return result.outcome.ok

    async def _run_test(self, test: TestDef) -> TestResult:
        retries = self.suite.retries if test.retries is None else test.retries
        timeout = self.test_timeout(test)
        earlier: list[str] = []
        attempts = 0
        # One trace per test run: its attempts, subtests and cleanups share it (not janitors).
        trace = CURRENT_TRACE.set(new_trace_id())
        try:
            while True:
                attempts += 1
                deadline = min(anyio.current_time() + timeout, self._deadline)
                attempt = await self._attempt(test.name, test.func, deadline, timeout)
                retry = attempt.outcome.bad and attempts <= retries
                if not retry or anyio.current_time() >= self._deadline:
                    break
                earlier.append(f"attempt {attempts}: {attempt.outcome.value}: {attempt.message}")
        finally:
            CURRENT_TRACE.reset(trace)
        if attempt.outcome is Outcome.PASSED and earlier:
            attempt.outcome = Outcome.FLAKY
            attempt.message = f"passed on attempt {attempts} after " + "; ".join(earlier)
        result = self._result(attempt, attempts)
        self._emit(result)
        return result

    async def _attempt(
        self, name: str, func: TestFunction, deadline: float, limit: float | None = None
    ) -> _Attempt:
        harness = Harness(
            settings=self.engine.settings,
            clients=self.clients,
            tracker=_RunTracker(suite=self.suite, ledger=self.engine.ledger, run_id=self.run_id),
            subtests=self,
            redact=self.engine.redact,
            deadline=deadline,
            browser=self.engine.browser,
            artifacts_dir=self._artifacts_dir(name),
        )
        context = T(self.suite.name, name, self.state, harness)
        outcome, message, tb = Outcome.PASSED, "", ""
        started_at = time.time()
        sink = CURRENT_SINK.set(harness.requests.append)
        try:
            with anyio.CancelScope(deadline=deadline) as scope:
                start, end, error = await _timed_call(func, context, harness)
                if error is not None:
                    outcome, message, tb = classify(error, harness)
            if scope.cancelled_caught:
                start, end = harness.started, time.monotonic()
                outcome = Outcome.TIMEOUT
                message = self._timeout_message(limit, deadline)
                harness.log(message, level="ERROR")
            elif anyio.current_time() >= deadline:  # it kept the loop (or clock) from acting
                outcome = Outcome.TIMEOUT
                message = (
                    f"{self._timeout_message(limit, deadline)} (it ran {end - start:.3f}s"
                    " without yielding to the time limit: a blocking call?)"
                )
                harness.log(message, level="ERROR")
            elif outcome is Outcome.PASSED and harness.failed:
                outcome, message = Outcome.FAILED, "; ".join(harness.failures)
        finally:
            CURRENT_SINK.reset(sink)
            cleanup_start = time.monotonic()
            failures = await self._cleanups(harness)
            cleanup_seconds = time.monotonic() - cleanup_start
        artifacts = self._kept_artifacts(harness.artifacts_dir, outcome)
        return _Attempt(
            name=name,
            outcome=outcome,
            message=message,
            traceback=tb,
            duration=round(max(end - start, 0.0), 6),
            started_at=started_at,
            ended_at=time.time(),
            harness=harness,
            cleanup_failures=failures,
            cleanup_seconds=round(cleanup_seconds, 6),
            trace_id=CURRENT_TRACE.get() or "",
            artifacts=artifacts,
        )

    def _artifacts_dir(self, name: str) -> Path:
        """Return where a failed browser test's files go; empty it for a new attempt."""
        directory = self.engine.settings.state_dir / ARTIFACTS_DIR / self.run_id / dir_of_test(name)
        if self._browser_running() and directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
        return directory

    def _browser_running(self) -> bool:
        """Tell whether a browser runs (no file system work for tests of an agent without)."""
        return self.engine.browser is not None and self.engine.browser.pid is not None

    def _kept_artifacts(self, directory: Path | None, outcome: Outcome) -> tuple[str, ...]:
        """Return the files a failed browser test kept; drop them when it did not fail."""
        if directory is None or not self._browser_running():
            return ()
        if outcome.bad:
            if not directory.is_dir():
                return ()
            return tuple(sorted(p.name for p in directory.iterdir() if p.is_file()))
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # the run's directory, when no other test kept files
        return ()

    def _timeout_message(self, timeout: float | None, deadline: float) -> str:
        if deadline >= self._deadline:
            return f"suite timeout of {self.suite_timeout:g}s exceeded"
        if timeout is None:
            return "timed out: the parent test's time limit was reached"
        return f"test timed out after {timeout:g}s"

    async def _cleanups(self, harness: Harness) -> list[CleanupFailure]:
        failures = []
        limit = self.engine.settings.cleanup_timeout
        while harness.cleanups:
            label, func = harness.cleanups.pop()
            error = await call_bounded(func, limit=limit)
            if error is not None:
                error, label = harness.redact(error), harness.redact(label)
                failures.append(CleanupFailure(label, error))
                harness.log(f"cleanup {label!r} failed: {error}", level="WARNING")
        return failures

    def _result(self, attempt: _Attempt, attempts: int) -> TestResult:
        harness = attempt.harness
        return TestResult(
            suite=self.suite.name,
            name=attempt.name,
            outcome=attempt.outcome,
            duration_seconds=attempt.duration,
            started_at=attempt.started_at,
            ended_at=attempt.ended_at,
            attempts=attempts,
            message=attempt.message,
            traceback=attempt.traceback,
            logs=tuple(harness.logs),
            steps=tuple(harness.steps),
            cleanup_failures=tuple(attempt.cleanup_failures),
            cleanup_seconds=attempt.cleanup_seconds,
            requests=tuple(timer.record() for timer in harness.requests),
            storage=tuple(harness.storage),
            trace_id=attempt.trace_id,
            pages=tuple(harness.pages),
            artifacts=attempt.artifacts,
        )

    def _skipped(self, name: str, reason: str) -> TestResult:
        now = time.time()
        return TestResult(
            suite=self.suite.name,
            name=name,
            outcome=Outcome.SKIPPED,
            duration_seconds=0.0,
            started_at=now,
            ended_at=now,
            attempts=0,
            message=reason,
        )

    def _emit(self, result: TestResult) -> None:
        self.results.append(result)
        self.listener.test_finished(result)


def unrun_suite(
    suite: Suite,
    run_id: str,
    reason: str,
    scheduled_at: float,
    outcome: Outcome = Outcome.SKIPPED,
) -> SuiteResult:
    """Return the result of a suite that did not run: every test ``outcome`` with ``reason``."""
    now = time.time()
    tests = tuple(
        TestResult(
            suite=suite.name,
            name=test.name,
            outcome=outcome,
            duration_seconds=0.0,
            started_at=now,
            ended_at=now,
            attempts=0,
            message=reason,
        )
        for test in suite.tests
    )
    return SuiteResult(
        suite=suite.name,
        run_id=run_id,
        outcome=outcome,
        tests=tests,
        started_at=now,
        ended_at=now,
        duration_seconds=0.0,
        scheduled_at=scheduled_at,
        skip_reason=reason if outcome is Outcome.SKIPPED else "",
    )
