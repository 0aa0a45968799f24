"""The shared browser: a crash or a hang fails only the running test; the next one gets a new
browser; nothing is left running."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator

import pytest

from synthetic_exporter import Suite, T
from synthetic_exporter.browser import BrowserPool, BrowserStats
from synthetic_exporter.browser.process import tree_pids
from synthetic_exporter.core.results import Outcome
from synthetic_exporter.core.settings import Settings
from tests.browser.site import Site, serve_site
from tests.engine_helpers import by_name, run_suites

pytestmark = pytest.mark.slow
SettingsFor = Callable[..., Settings]


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve_site() as running:
        yield running


def pool_of(t: T) -> BrowserPool:
    pool = t._harness.browser
    assert pool is not None
    return pool


def crash_suite(stop: signal.Signals, pids: list[int], stats: list[BrowserStats]) -> Suite:
    """A test whose browser gets ``stop`` mid-test, then one that needs a browser again."""
    suite = Suite("crash", stop_on_failure=False)

    @suite.test(timeout=30)
    async def loses_its_browser(t: T) -> None:
        async with t.page() as page:
            await page.goto("/")
            pid = pool_of(t).pid
            assert pid is not None
            pids.append(pid)
            os.kill(pid, stop)
            await page.goto("/busy")

    @suite.test
    async def runs_after(t: T) -> None:
        async with t.page() as page:
            await page.goto("/")
            assert await page.title() == "Shop"
        stats.append(pool_of(t).stats())
        pids.append(pool_of(t).pid or 0)

    return suite


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        (signal.SIGKILL, ("its process exited", "its connection closed")),
        (signal.SIGSTOP, ("it stopped answering for 5s",)),
    ],
)
async def test_a_crashed_or_hung_browser_errs_its_test_and_restarts(
    site: Site, settings_for: SettingsFor, stop: signal.Signals, reason: tuple[str, ...]
) -> None:
    pids: list[int] = []
    stats: list[BrowserStats] = []
    recorder = await run_suites(settings_for(site.url), [crash_suite(stop, pids, stats)])
    results = by_name(recorder.tests)
    lost = results["crash/loses_its_browser"]
    assert lost.outcome is Outcome.ERROR, lost.message
    assert lost.message.startswith("BrowserError: the browser failed: ")
    assert lost.message.split(": ", 2)[2].split(";")[0] in reason
    assert lost.message.endswith("it was killed and restarts for the next page")
    after = results["crash/runs_after"]
    assert after.outcome is Outcome.PASSED, after.message
    (stat,) = stats
    assert stat.restarts == 1
    assert stat.open_contexts == 0
    assert stat.processes >= 3  # browser, zygote, renderer, utility processes
    assert stat.memory_bytes > 50 * 2**20
    first, second = pids
    assert first != second
    assert tree_pids(first) == []  # the crashed tree was killed and reaped
    assert tree_pids(second) == []  # the engine's end killed the second one


async def test_no_browser_starts_without_a_page(settings_for: SettingsFor) -> None:
    suite = Suite("api")
    seen: list[BrowserStats] = []

    @suite.test
    async def no_page(t: T) -> None:
        seen.append(pool_of(t).stats())

    await run_suites(settings_for(), [suite])
    assert seen == [BrowserStats(processes=0, memory_bytes=0, open_contexts=0, restarts=0)]


async def test_a_browser_that_cannot_start_errs_the_test(
    site: Site, settings_for: SettingsFor
) -> None:
    suite = Suite("nobrowser")

    @suite.test
    async def home(t: T) -> None:
        async with t.page() as page:
            await page.goto("/")

    settings = settings_for(site.url, browser_executable="/nonexistent/chromium")
    recorder = await run_suites(settings, [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.ERROR
    assert result.message.startswith("BrowserStartError: cannot start Chromium at")


async def test_pages_open_at_once_are_limited_by_the_setting(
    site: Site, settings_for: SettingsFor
) -> None:
    seen: list[int] = []

    def suite(name: str) -> Suite:
        made = Suite(name)

        @made.test
        async def visit(t: T) -> None:
            async with t.page() as page:
                await page.goto("/busy")
                seen.append(pool_of(t).stats().open_contexts)
                await page.wait_for_timeout(300)

        return made

    settings = settings_for(site.url, concurrency=3, browser_concurrency=1)
    recorder = await run_suites(settings, [suite("a"), suite("b"), suite("c")])
    assert [r.outcome for r in recorder.tests] == [Outcome.PASSED] * 3
    assert seen == [1, 1, 1]
