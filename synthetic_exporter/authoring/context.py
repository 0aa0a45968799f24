"""The test context ``T``, modelled on Go's ``testing.T``.

Example::

    @suite.test
    async def sign_up(t: T) -> None:
        r = await t.http.post("/customers", json={...})
        assert r.status_code == 201, r.text
        t.state["customer"] = r.json()
        t.track("customer", r.json()["id"])      # the janitor deletes it, even after a crash
        async with t.step("confirm"):
            ...
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import httpx

from synthetic_exporter.authoring.janitor import JanitorContext, janitor_settings
from synthetic_exporter.browser import BrowserPool, PageOrder, open_page
from synthetic_exporter.core.results import LogLine, PageRecord, StepResult, StorageReport
from synthetic_exporter.http.timing import RequestTimer

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.async_api import Page

    from synthetic_exporter.authoring.suite import TestFunction
    from synthetic_exporter.core.settings import Settings

Cleanup = Callable[[], Awaitable[Any] | Any]


class TestStop(BaseException):
    """Ends a test early. A BaseException, so ``except Exception`` in a check cannot swallow it."""

    __test__ = False  # not a pytest test class

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FatalStop(TestStop):
    """Raised by ``t.fatal``: the test failed and stops here."""


class SkipStop(TestStop):
    """Raised by ``t.skip``: the test is skipped."""


class UnknownTargetError(LookupError):
    """A check asked for a target that is not configured."""


class Tracker(Protocol):
    """Records test resources in the durable cleanup ledger."""

    def intend(self, kind: str) -> str:
        """Record that a resource is about to be created; return the key it should carry."""

    def track(
        self, kind: str, resource_id: str, data: dict[str, Any], key: str | None = None
    ) -> None:
        """Record a resource before it is used (resolving the intent of ``key``, if given)."""


class SubtestRunner(Protocol):
    """Runs a subtest on behalf of its parent (the runner implements this)."""

    async def run_subtest(
        self, parent: Harness, parent_name: str, name: str, func: TestFunction
    ) -> bool:
        """Run ``func`` as ``parent_name/name`` in the parent's time limit; return if it passed."""


def _unchanged(text: str) -> str:
    return text


@dataclass(slots=True, kw_only=True)
class Harness:
    """The runner's side of one test: what ``T`` is given, and what the runner reads after it.

    Check code never sees it: ``T`` keeps it in a private slot. The runner makes one per test
    (or subtest) attempt and turns what it recorded into the test's result.
    """

    settings: Settings
    clients: Mapping[str, httpx.AsyncClient]
    tracker: Tracker
    subtests: SubtestRunner
    redact: Callable[[str], str] = _unchanged
    deadline: float = float("inf")
    started: float = field(default_factory=time.monotonic)
    failures: list[str] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    cleanups: list[tuple[str, Cleanup]] = field(default_factory=list)
    requests: list[RequestTimer] = field(default_factory=list)  # recorded after the test
    storage: list[StorageReport] = field(default_factory=list)
    # Browser checks (issue 17): the agent's browser, where a failed page's files go, pages.
    browser: BrowserPool | None = None
    artifacts_dir: Path | None = None
    pages: list[PageRecord] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Return whether the test was marked failed."""
        return bool(self.failures)

    def log(self, message: object, level: str = "INFO") -> None:
        """Record a line, redacted, with its offset from the test's start."""
        offset = time.monotonic() - self.started
        self.logs.append(
            LogLine(offset_seconds=round(offset, 6), level=level, message=self.redact(str(message)))
        )

    def fail(self, message: object) -> str:
        """Mark the test failed with ``message`` (redacted, logged); return the redacted text."""
        text = self.redact(str(message))
        self.failures.append(text)
        self.log(text, level="ERROR")
        return text


class T:
    """What a test receives: logging, failing, skipping, cleanups, subtests, steps, clients.

    Everything public here is for check authors; the runner's plumbing stays in a private
    :class:`Harness`.
    """

    __slots__ = ("_harness", "_name", "_state", "_suite")

    def __init__(self, suite: str, name: str, state: dict[str, Any], harness: Harness) -> None:
        self._suite = suite
        self._name = name
        self._state = state
        self._harness = harness

    def __repr__(self) -> str:
        return f"<T {self.full_name}>"

    @property
    def suite(self) -> str:
        """Return the suite's name."""
        return self._suite

    @property
    def name(self) -> str:
        """Return the test's name (``parent/sub`` for a subtest)."""
        return self._name

    @property
    def full_name(self) -> str:
        """Return ``suite/test``."""
        return f"{self._suite}/{self._name}"

    @property
    def state(self) -> dict[str, Any]:
        """Return the dict the tests of one suite run share (earlier tests leave values here)."""
        return self._state

    @property
    def targets(self) -> frozenset[str]:
        """Return the names of the configured targets (``SYNTHETIC_TARGETS__<NAME>__...``)."""
        return frozenset(self._harness.settings.targets)

    @property
    def failed(self) -> bool:
        """Return whether ``fail`` or ``fatal`` was called."""
        return self._harness.failed

    def log(self, message: object, *, level: str = "INFO") -> None:
        """Record a line in the test's result."""
        self._harness.log(message, level)

    def fail(self, message: object = "failed") -> None:
        """Mark the test failed and carry on."""
        self._harness.fail(message)

    def fatal(self, message: object = "failed") -> NoReturn:
        """Mark the test failed and stop it."""
        raise FatalStop(self._harness.fail(message))

    def skip(self, reason: object = "skipped") -> NoReturn:
        """Stop the test and report it skipped."""
        raise SkipStop(self._harness.redact(str(reason)))

    def cleanup(self, func: Cleanup, name: str | None = None) -> None:
        """Register ``func`` (sync or async) to run when the test ends, however it ends (LIFO)."""
        label = name if name else str(getattr(func, "__name__", "cleanup"))
        self._harness.cleanups.append((label, func))

    async def run(self, name: str, func: TestFunction) -> bool:
        """Run a subtest, reported as ``test/name``; return whether it passed."""
        harness = self._harness
        return await harness.subtests.run_subtest(harness, self._name, name, func)

    @asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        """Time a named step of the test: ``async with t.step("pay"): ...``."""
        harness = self._harness
        name = harness.redact(name)  # an author-chosen name reaches labels, JSON and pages
        start = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            duration = time.monotonic() - start
            harness.steps.append(StepResult(name=name, duration_seconds=round(duration, 6), ok=ok))
            harness.log(f"step {name!r} {'ok' if ok else 'failed'} in {duration:.3f}s")

    def intend(self, kind: str) -> str:
        """Record, before a create request, that a ``kind`` resource is about to exist.

        Returns a unique key (``synthetic-<run id>-<n>``) to put in the new resource (its name,
        a tag, an e-mail address): if the run never learns the resource's id (killed, timed
        out), the suite's orphan listing finds it by that key and its janitor deletes it. Pass
        the key to ``t.track`` with the id::

            key = t.intend("customer")
            r = await t.http.post("/customers", json={"name": f"Synthetic {key}", ...})
            t.track("customer", r.json()["id"], key=key)
        """
        return self._harness.tracker.intend(kind)

    def track(self, kind: str, resource_id: object, *, key: str | None = None, **data: Any) -> None:
        """Record a resource in the durable ledger; the suite's janitor for ``kind`` deletes it.

        ``key`` is what ``t.intend(kind)`` returned before the create request, if it was called.
        """
        self._harness.tracker.track(kind, str(resource_id), data, key)

    def client(self, target: str) -> httpx.AsyncClient:
        """Return the HTTP client of a configured target."""
        clients = self._harness.clients
        try:
            return clients[target]
        except KeyError:
            variable = f"SYNTHETIC_TARGETS__{target.upper()}__BASE_URL"
            known = ", ".join(sorted(clients)) or "none"
            raise UnknownTargetError(
                f"no target named {target!r} (set {variable}; configured: {known})"
            ) from None

    @property
    def http(self) -> httpx.AsyncClient:
        """Return the client of the target named ``default``."""
        return self.client("default")

    @asynccontextmanager
    async def page(self, target: str = "default") -> AsyncIterator[Page]:
        """Open a browser page on a target: ``async with t.page() as page: await page.goto("/")``.

        A Playwright ``Page`` in a fresh browser context (nothing shared with other tests),
        based on the target's BASE_URL, sending the marker header and the target's HEADERS to
        the target's origin, timed out by the test's time limit. Each document it loads is
        recorded (navigation timing, Web Vitals, requests, bytes, CDN cache status); if the
        test is failing when the page closes, a screenshot and a trace are kept.
        """
        harness = self._harness
        self.client(target)  # an unknown target: the same error as for HTTP
        if harness.browser is None:
            raise RuntimeError("no browser: t.page() runs in the agent's engine only")
        order = PageOrder(
            settings=harness.settings,
            target=target,
            deadline=harness.deadline,
            record=harness.pages.append,
            failing=lambda exc: harness.failed or not isinstance(exc, SkipStop | None),
            artifacts_dir=harness.artifacts_dir,
            redact=harness.redact,
        )
        async with open_page(harness.browser, order) as page:
            yield page

    def report_storage(self, target: str, object_versions: int, delete_markers: int) -> None:
        """Record what a storage hygiene check counted under its prefix (exported as gauges)."""
        report = StorageReport(
            target=target, object_versions=object_versions, delete_markers=delete_markers
        )
        self._harness.storage.append(report)
        self.log(f"{target}: {object_versions} object versions, {delete_markers} delete markers")

    def secret(self, name: str) -> str:
        """Return the value of a configured secret (``SYNTHETIC_SECRETS__<NAME>``)."""
        try:
            return self._harness.settings.secrets[name.lower()].get_secret_value()
        except KeyError:
            raise LookupError(
                f"no secret named {name!r} (set SYNTHETIC_SECRETS__{name.upper()})"
            ) from None


def settings_of(context: T | JanitorContext) -> Settings:
    """Return the agent's settings behind a test or janitor context.

    For the agent's own helpers (:mod:`synthetic_exporter.s3` needs a target's timeout and TLS
    settings); check code reads ``t.targets`` and ``t.secret`` instead.
    """
    if isinstance(context, T):
        return context._harness.settings
    return janitor_settings(context)
