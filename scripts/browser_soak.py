"""Soak the browser runtime: many one-page browser checks in a row on one agent engine.

    python scripts/browser_soak.py [--checks 1000] [--seconds 0] [--warmup 20] [--json]

Serves the browser tests' local page (tests/browser/site.py: HTML, two stylesheets, a script,
an image, one slow asset) on 127.0.0.1 and runs a one-test suite that opens it in
``t.page()``, checks its text and closes it, ``--checks`` times in a row (or until
``--seconds`` have passed, if that comes first), on one engine with one shared Chromium.
After ``--warmup`` checks and at the end it waits 2 s (the last context's renderer process
exits) and reads the browser pool: processes and RSS of Chromium's process tree, contexts and
pages open, restarts; and the agent process's own RSS.
Prints the figures and their growth; ``--json`` prints them as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import expect  # noqa: E402

from synthetic_exporter import Suite, T  # noqa: E402
from synthetic_exporter.browser import BrowserPool  # noqa: E402
from synthetic_exporter.core.results import Outcome, SuiteResult, TestResult  # noqa: E402
from synthetic_exporter.core.settings import Settings, TargetSettings  # noqa: E402
from synthetic_exporter.engine.coordinator import Coordinator  # noqa: E402
from synthetic_exporter.engine.wiring import open_engine  # noqa: E402
from tests.browser.site import serve_site  # noqa: E402

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SETTLE_SECONDS = 2.0


class Counter:
    """Counts test outcomes."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        self.messages: list[str] = []

    def test_finished(self, result: TestResult) -> None:
        self.outcomes[result.outcome.value] = self.outcomes.get(result.outcome.value, 0) + 1
        if result.outcome is not Outcome.PASSED and len(self.messages) < 5:
            self.messages.append(result.message)

    def suite_finished(self, result: SuiteResult) -> None:
        pass


def own_rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_SIZE


async def sample(pool: BrowserPool) -> dict[str, int]:
    await asyncio.sleep(SETTLE_SECONDS)  # the last context's renderer is on its way out
    stats = pool.stats()
    return {
        "processes": stats.processes,
        "browser_pss": stats.memory_bytes,
        "contexts": stats.open_contexts,
        "pages": await pool.open_pages(),
        "restarts": stats.restarts,
        "agent_rss": own_rss(),
    }


async def soak(checks: int, seconds: float, warmup: int) -> dict[str, Any]:
    suite = Suite("soak")

    @suite.test
    async def shop(t: T) -> None:
        async with t.page() as page:
            await page.goto("/")
            await expect(page.locator("#greeting")).to_have_text("Hello")

    counter = Counter()
    with serve_site() as site, tempfile.TemporaryDirectory() as state:
        settings = Settings(
            state_dir=Path(state), targets={"default": TargetSettings(base_url=site.url)}
        )
        async with open_engine(settings, {"soak": suite}) as engine:
            assert engine.browser is not None
            coordinator = Coordinator(
                engine=engine, suites={"soak": suite}, listener=counter, concurrency=1
            )
            start = time.monotonic()
            after_warmup: dict[str, int] = {}
            warm_start = start
            done = 0
            while done < checks and (not seconds or time.monotonic() - start < seconds):
                await coordinator.run_batch(["soak"])
                done += 1
                if done == warmup:
                    after_warmup = await sample(engine.browser)
                    warm_start = time.monotonic()
            end = await sample(engine.browser)
            measured = done - warmup
            per_check = (time.monotonic() - warm_start) / measured if measured > 0 else 0.0
    return {
        "checks": done,
        "outcomes": counter.outcomes,
        "messages": counter.messages,
        "seconds_per_check": round(per_check, 4),
        "after_warmup": after_warmup,
        "end": end,
        "growth": {k: end[k] - after_warmup[k] for k in end} if after_warmup else {},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=0.0, help="stop earlier (0: never)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(soak(args.checks, args.seconds, args.warmup))
    if args.json:
        print(json.dumps(figures))
        return
    mib = 2**20
    each = figures["seconds_per_check"]
    print(f"{figures['checks']} checks: {figures['outcomes']}, {each}s each")
    for label in ("after_warmup", "end"):
        f = figures[label]
        print(
            f"{label}: {f['processes']} processes, browser PSS {f['browser_pss'] / mib:.1f} MiB,"
            f" agent RSS {f['agent_rss'] / mib:.1f} MiB, {f['contexts']} contexts,"
            f" {f['pages']} pages, {f['restarts']} restarts"
        )
    growth = figures["growth"]
    print(
        f"growth: {growth['processes']:+d} processes, browser PSS"
        f" {growth['browser_pss'] / mib:+.1f} MiB, agent RSS {growth['agent_rss'] / mib:+.1f} MiB"
    )


if __name__ == "__main__":
    main()
