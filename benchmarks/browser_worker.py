"""One browser benchmark cell, in its own process: ``python -m benchmarks.browser_worker``.

The real engine (``open_engine``: the agent's browser pool, Chromium launched by the agent)
runs ``--concurrency`` identical one-page suites in a closed loop for ``--seconds``: each suite
run opens a fresh context on the demo's ``cdn`` target, loads the storefront (``app/``: the
page, its style, a script, four images through the edge) and waits for its heading. Before the
loop, one warm-up run starts Chromium. The CPU time of this process and of Chromium's tree
(utime + stime, plus the children it reaped: renderers that exited) and their memory
(proportional set size summed over the tree, sampled every 100 ms) are read from ``/proc``.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from playwright.async_api import expect

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import SuiteResult, TestResult
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.wiring import open_engine

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.1


def children_of() -> dict[int, list[int]]:
    """Map every live PID to its children's PIDs (from ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree(root: int) -> list[int]:
    """Return ``root`` and all its live descendants."""
    children, found, todo = children_of(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of the processes, with what their reaped children used."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(f) for f in fields[11:15])
    return total / CLOCK_TICKS


def pss_bytes(pids: list[int]) -> int:
    """Proportional set size summed over the processes (shared pages counted once overall)."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def one_page_suite(name: str) -> Suite:
    """A suite of one browser test: the storefront through the edge."""
    suite = Suite(name, timeout="30s")

    @suite.test
    async def storefront(t: T) -> None:
        async with t.page(target="cdn") as page:
            await page.goto("app/")
            await expect(page.get_by_role("heading", level=1)).to_contain_text("Widgets")

    return suite


class Counter:
    """Counts finished tests by outcome."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}

    def test_finished(self, result: TestResult) -> None:
        key = str(result.outcome.value)
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    def suite_finished(self, result: SuiteResult) -> None:
        pass


async def measure(api: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Run the closed loop; return checks, CPU seconds, peak memory and processes."""
    with tempfile.TemporaryDirectory(prefix="synthetic-bench-browser-") as state:
        settings = Settings(
            targets={"cdn": TargetSettings(base_url=f"{api}/cdn")},
            state_dir=Path(state),
            browser_concurrency=concurrency,
            concurrency=concurrency,
        )
        suites = {s.name: s for s in (one_page_suite(f"page{i}") for i in range(concurrency))}
        counter = Counter()
        async with open_engine(settings, suites) as engine:
            coordinator = Coordinator(
                engine=engine, suites=suites, listener=counter, concurrency=concurrency
            )
            await coordinator.run_batch(list(suites))  # warm-up: Chromium starts
            warm = dict(counter.outcomes)
            me = os.getpid()
            idle_pss = pss_bytes(tree(me))
            cpu_before = cpu_seconds(tree(me))
            peak = {"pss": idle_pss, "processes": len(tree(me))}
            started = time.monotonic()
            deadline = started + seconds

            async def loop(name: str) -> None:
                while time.monotonic() < deadline:
                    await coordinator.run_batch([name])

            async def sample() -> None:
                while True:
                    pids = tree(me)
                    peak["pss"] = max(peak["pss"], pss_bytes(pids))
                    peak["processes"] = max(peak["processes"], len(pids))
                    await anyio.sleep(SAMPLE_SECONDS)

            async with anyio.create_task_group() as group:
                group.start_soon(sample)
                async with anyio.create_task_group() as loops:
                    for name in suites:
                        loops.start_soon(loop, name)
                group.cancel_scope.cancel()
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(tree(me)) - cpu_before
    done = {k: v - warm.get(k, 0) for k, v in counter.outcomes.items()}
    return {
        "concurrency": concurrency,
        "seconds": elapsed,
        "checks": sum(done.values()),
        "outcomes": done,
        "cpu_seconds": cpu,
        "idle_pss_bytes": idle_pss,
        "peak_pss_bytes": peak["pss"],
        "peak_processes": peak["processes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.browser_worker")
    parser.add_argument("--api", required=True, help="the demo API's URL")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    result = anyio.run(measure, args.api, args.concurrency, args.seconds)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
