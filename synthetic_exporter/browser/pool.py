"""One shared Chromium per agent: started at the first page, watched, killed and restarted.

Pages open at once are limited by ``SYNTHETIC_BROWSER_CONCURRENCY``; each gets a fresh browser
context (no cookies or storage shared). A watch task pings the browser over CDP every second
while it runs: a browser whose process exited, whose connection dropped or that does not
answer within :data:`HANG_TIMEOUT` is killed with its process tree (by its process group, see
:mod:`synthetic_exporter.browser.process`); the pages it held fail with a
:class:`BrowserError` that says why, and the next page starts a new browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from synthetic_exporter.browser.process import (
    ChromiumProcess,
    executable,
    launch,
    memory_bytes,
    tree_pids,
)
from synthetic_exporter.browser.shielded import run_to_end

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, CDPSession, Playwright

    from synthetic_exporter.core.settings import Settings

HANG_TIMEOUT = 5.0
"""Seconds the browser may take to answer a ping, or to open a context, before it is killed."""
WATCH_INTERVAL = 1.0
CLOSE_TIMEOUT = 10.0
"""Seconds a context may take to close; longer, and the browser is killed (nothing leaks)."""


class BrowserError(RuntimeError):
    """The browser could not serve a page: it did not start, crashed or stopped answering."""


@dataclass(frozen=True, slots=True)
class BrowserStats:
    """The shared browser, read at scrape time.

    Its processes and memory (PSS summed over its process tree, from ``/proc``), the contexts
    open, and the restarts after a crash or hang.
    """

    processes: int
    memory_bytes: int
    open_contexts: int
    restarts: int


@dataclass(slots=True)
class _Instance:
    """One launch: the process, Playwright's connection to it, and why it was killed."""

    chromium: ChromiumProcess
    browser: Browser
    session: CDPSession
    failure: str = ""


class BrowserPool:
    """The agent's browser: ``async with pool.context(...) as context`` gives a fresh context.

    Use it as an async context manager (``async with BrowserPool(settings) as pool``): that
    runs the watch task, and on the way out kills the browser and stops Playwright's driver.
    Nothing starts until the first context is asked for.
    """

    def __init__(self, settings: Settings) -> None:
        self._executable: Path | None = settings.browser_executable
        self._args = list(settings.browser_args)
        self._slots = anyio.Semaphore(settings.browser_concurrency)
        self._lock = anyio.Lock()
        self._playwright: Playwright | None = None
        self._instance: _Instance | None = None
        self._tasks: TaskGroup | None = None
        self._open = 0
        self._restarts = 0

    async def __aenter__(self) -> BrowserPool:
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        self._tasks.start_soon(self._watch)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tasks is not None
        self._tasks.cancel_scope.cancel()
        try:
            # The body's own error is not the watcher's: given to the task group, it would come
            # out wrapped in an ExceptionGroup, past the CLI's handlers (a start-up error would
            # end in a traceback instead of its one line). It propagates from here as it is.
            await self._tasks.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        """Kill the browser and stop Playwright's driver."""
        with anyio.CancelScope(shield=True):
            if self._instance is not None:
                await self._kill(self._instance, "the agent stopped", restart=False)
            if self._playwright is not None:
                with anyio.move_on_after(CLOSE_TIMEOUT), contextlib.suppress(Exception):
                    await self._playwright.stop()
                self._playwright = None

    @property
    def pid(self) -> int | None:
        """Return the running browser's PID (its process group too), or None."""
        return self._instance.chromium.pid if self._instance is not None else None

    def stats(self) -> BrowserStats:
        """Return the browser's processes, memory, open contexts and restarts (from ``/proc``)."""
        instance = self._instance
        pids = tree_pids(instance.chromium.pid) if instance is not None else []
        return BrowserStats(
            processes=len(pids),
            memory_bytes=memory_bytes(pids),
            open_contexts=self._open,
            restarts=self._restarts,
        )

    async def open_pages(self) -> int:
        """Return how many pages the running browser has open (its own blank one included)."""
        instance = self._instance
        if instance is None:
            return 0
        with anyio.fail_after(HANG_TIMEOUT):
            found = await instance.session.send("Target.getTargets")
        return sum(1 for target in found["targetInfos"] if target.get("type") == "page")

    @asynccontextmanager
    async def context(self, **options: Any) -> AsyncIterator[BrowserContext]:
        """Give a fresh context (``options`` of ``Browser.new_context``) for a page; close it.

        Waits for a slot of ``SYNTHETIC_BROWSER_CONCURRENCY`` first. Errors of the browser
        itself (it died, hung, or would not start) come out as :class:`BrowserError`.
        """
        async with self._slots:
            instance = await self._running()
            try:
                with anyio.fail_after(HANG_TIMEOUT):
                    context = await instance.browser.new_context(**options)
            except TimeoutError:
                await self._kill(instance, f"it did not open a context in {HANG_TIMEOUT:g}s")
                raise BrowserError(self.failure_of(instance)) from None
            except Exception as exc:
                error = self.error(instance, exc)
                if error is exc:
                    raise
                raise error from exc
            self._open += 1
            try:
                yield context
            except Exception as exc:
                error = self.error(instance, exc)
                if error is exc:
                    raise
                raise error from exc
            finally:
                self._open -= 1
                await run_to_end(self._close(instance, context))

    def error(self, instance: _Instance, exc: Exception) -> Exception:
        """Return what a page's error means: a :class:`BrowserError` if the browser failed."""
        if not instance.failure and not instance.chromium.alive():
            instance.failure = "its process exited"
        if not instance.failure and not instance.browser.is_connected():
            instance.failure = "its connection closed"
        if instance.failure:
            return BrowserError(self.failure_of(instance))
        return exc

    def failure_of(self, instance: _Instance) -> str:
        """Return the message of a page lost with a failed browser."""
        return (
            f"the browser failed: {instance.failure}; it was killed and restarts for the next page"
        )

    async def _close(self, instance: _Instance, context: BrowserContext) -> None:
        if instance.failure or instance is not self._instance:
            return  # killed: its contexts went with it
        with anyio.move_on_after(CLOSE_TIMEOUT) as scope, contextlib.suppress(Exception):
            await context.close()
        if scope.cancelled_caught:
            await self._kill(instance, f"a context did not close in {CLOSE_TIMEOUT:g}s")

    async def _running(self) -> _Instance:
        """Return the running browser; start it (again) if there is none or it failed."""
        async with self._lock:
            instance = self._instance
            if instance is not None and not instance.failure and instance.chromium.alive():
                return instance
            if instance is not None:
                await self._kill(instance, instance.failure or "its process exited")
            with anyio.CancelScope(shield=True):  # bounded; a test's time limit wastes no start
                started = self._instance = await self._start()
            return started

    async def _start(self) -> _Instance:
        from playwright.async_api import async_playwright

        if self._playwright is None:
            self._playwright = await async_playwright().start()
        path = executable(self._executable) or Path(self._playwright.chromium.executable_path)
        chromium = await launch(path, self._args)
        try:
            with anyio.fail_after(HANG_TIMEOUT * 4):
                browser = await self._playwright.chromium.connect_over_cdp(chromium.endpoint)
                session = await browser.new_browser_cdp_session()
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await chromium.kill()
            if isinstance(exc, Exception):
                raise BrowserError(f"cannot connect to Chromium at {path}: {exc}") from None
            raise
        instance = _Instance(chromium=chromium, browser=browser, session=session)
        browser.on("disconnected", lambda _: self._disconnected(instance))
        return instance

    def _disconnected(self, instance: _Instance) -> None:
        if not instance.failure:
            instance.failure = "its connection closed"

    async def _kill(self, instance: _Instance, reason: str, *, restart: bool = True) -> None:
        """Kill one launch's process tree; count a restart unless the agent is stopping."""
        with anyio.CancelScope(shield=True):
            if not instance.failure:
                instance.failure = reason
            if self._instance is instance:
                self._instance = None
                self._restarts += restart
            await instance.chromium.kill()
            with anyio.move_on_after(2), contextlib.suppress(Exception):
                await instance.browser.close()

    async def _watch(self) -> None:
        """Ping the running browser each second; kill it when it died or stopped answering."""
        while True:
            await anyio.sleep(WATCH_INTERVAL)
            instance = self._instance
            if instance is None:
                continue
            reason = await self._check(instance)
            if reason and self._instance is instance:
                await self._kill(instance, reason)

    async def _check(self, instance: _Instance) -> str:
        if instance.failure:
            return instance.failure
        if not instance.chromium.alive():
            return "its process exited"
        try:
            with anyio.fail_after(HANG_TIMEOUT):
                await instance.session.send("Browser.getVersion")
        except TimeoutError:
            return f"it stopped answering for {HANG_TIMEOUT:g}s"
        except Exception:
            return instance.failure or "its connection closed"
        return ""
