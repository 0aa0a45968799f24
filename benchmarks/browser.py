"""Browser checks: CPU and memory per check, and how many run per core.

Starts the demo API (its web app through the CloudFront-like edge) and, for each concurrency
(1 and 2 pages open at once), a worker process (:mod:`benchmarks.browser_worker`) that runs
one-page browser checks in a closed loop through the real engine and Chromium, and reads the
CPU time and memory of itself and Chromium's process tree from ``/proc``. Skipped, with the
reason, where Playwright or Chromium is missing. ``python -m benchmarks.browser`` runs it alone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.procs import start, stop

CONCURRENCY = (1, 2)
QUICK_CONCURRENCY = (1,)
FULL_SECONDS = 15.0
QUICK_SECONDS = 1.0
WORKER_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Cell:
    """One closed loop: checks done, CPU used and memory, at one concurrency."""

    concurrency: int
    seconds: float
    checks: int
    failed: int
    cpu_seconds: float
    idle_pss_bytes: int
    peak_pss_bytes: int
    peak_processes: int

    @property
    def cpu_ms_per_check(self) -> float:
        """CPU milliseconds (agent process and Chromium's tree) per check."""
        return 1000 * self.cpu_seconds / self.checks if self.checks else float("nan")

    @property
    def per_core_minute(self) -> float:
        """Checks one fully used core would run per minute."""
        return 60 * self.checks / self.cpu_seconds if self.cpu_seconds else float("nan")

    @property
    def cores(self) -> float:
        """Cores the loop kept busy."""
        return self.cpu_seconds / self.seconds if self.seconds else float("nan")


@dataclass
class BrowserBench:
    """The browser rows: one cell per concurrency, or why they were skipped."""

    cells: list[Cell] = field(default_factory=list)
    skipped: str = ""


def missing() -> str:
    """Return why browser checks cannot run here, or ``""``."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install 'synthetic-exporter[browser]')"
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (make browser-deps)"
    return ""


async def measure_browser(quick: bool) -> BrowserBench:
    """Run the closed loops against a fresh demo API; stop every process started."""
    reason = missing()
    if reason:
        return BrowserBench(skipped=reason)
    seconds = QUICK_SECONDS if quick else FULL_SECONDS
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="synthetic-bench-browser-") as tmp:
        log = Path(tmp) / "browser.log"
        demo = await start(
            "demo API",
            [sys.executable, "-m", "synthetic_exporter.demo", "--port", "0"],
            log,
            marker="listening on ",
        )
        try:
            for concurrency in QUICK_CONCURRENCY if quick else CONCURRENCY:
                cells.append(await _cell(demo.url, concurrency, seconds, log))
        finally:
            await stop(demo)
    return BrowserBench(cells)


async def _cell(api: str, concurrency: int, seconds: float, log: Path) -> Cell:
    args = ["--api", api, "--concurrency", str(concurrency), "--seconds", str(seconds)]
    worker = await start(
        f"browser worker x{concurrency}",
        [sys.executable, "-m", "benchmarks.browser_worker", *args],
        log,
    )
    try:
        assert worker.process.stdout is not None
        line = await asyncio.wait_for(worker.process.stdout.readline(), WORKER_TIMEOUT_SECONDS)
    finally:
        await stop(worker)
    if not line:
        raise RuntimeError(f"the browser worker printed nothing (see {log})")
    data = json.loads(line)
    outcomes: dict[str, int] = data["outcomes"]
    return Cell(
        concurrency=concurrency,
        seconds=data["seconds"],
        checks=data["checks"],
        failed=data["checks"] - outcomes.get("passed", 0),
        cpu_seconds=data["cpu_seconds"],
        idle_pss_bytes=data["idle_pss_bytes"],
        peak_pss_bytes=data["peak_pss_bytes"],
        peak_processes=data["peak_processes"],
    )


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    bench = asyncio.run(measure_browser(quick))
    print(bench.skipped or "\n".join(str(cell) for cell in bench.cells))


if __name__ == "__main__":
    main()
