"""Entry point: ``python -m benchmarks [--quick] [--output PATH]`` (``make bench``).

Starts the target, Debian's blackbox_exporter and the agent worker on 127.0.0.1, measures
accuracy and throughput (over HTTP and HTTPS), schedule lag, scrape cost, series and bytes
per check, memory, and browser checks' CPU and memory (:mod:`benchmarks.browser`, against
the demo web app) in one run (systems interleaved within each measurement), prints the
Markdown report and writes it into ``--output`` (default ``docs/performance.md`` for a full
run; a quick run writes only where told).
``--httpx2-python`` (or ``BENCH_HTTPX2_PYTHON``) names the interpreter of a virtualenv with
httpx2 for the httpx2 what-if rows (:mod:`benchmarks.httpx2`); without it they are skipped
with a note. Every child process is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from benchmarks.accuracy import measure_accuracy
from benchmarks.agent_api import code_under_test
from benchmarks.blackbox import BINARY
from benchmarks.browser import BrowserBench, measure_browser
from benchmarks.httpx2 import Httpx2, find_httpx2
from benchmarks.lab import Lab, Plan, open_lab
from benchmarks.lag import measure_lag
from benchmarks.memory import Memory, measure_memory
from benchmarks.report import Results, render_report, write_report
from benchmarks.scrape import measure_scrape
from benchmarks.series import measure_series
from benchmarks.throughput import measure_throughput

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
R = TypeVar("R")


async def _phase(
    name: str, timings: dict[str, float], step: Callable[[Lab], Awaitable[R]], lab: Lab
) -> R:
    print(f"benchmark: {name}...", file=sys.stderr, flush=True)
    start = time.monotonic()
    result = await step(lab)
    timings[name] = time.monotonic() - start
    print(f"benchmark: {name} took {timings[name]:.0f} s", file=sys.stderr, flush=True)
    return result


async def run(plan: Plan, command: str, httpx2_python: str | None = None) -> Results:
    """Run every measurement once; return the figures."""
    start = time.monotonic()
    code = code_under_test()
    timings: dict[str, float] = {}
    httpx2: Httpx2 = await find_httpx2(httpx2_python)
    with tempfile.TemporaryDirectory(prefix="synthetic-bench-") as tmp:
        async with open_lab(plan, Path(tmp), httpx2) as lab:
            accuracy = await _phase("accuracy", timings, measure_accuracy, lab)
            throughput = await _phase("throughput", timings, measure_throughput, lab)
            lag = await _phase("schedule lag", timings, measure_lag, lab)
            scrape = await _phase("scrape", timings, measure_scrape, lab)
            series = await _phase("series", timings, measure_series, lab)

            async def memory(lab: Lab) -> Memory:
                return await measure_memory(
                    lab, lab.blackbox_idle_rss, throughput.blackbox_rss_after
                )

            mem = await _phase("memory", timings, memory, lab)

            async def browser(lab: Lab) -> BrowserBench:
                return await measure_browser(lab.plan.quick)

            browser_bench = await _phase("browser checks", timings, browser, lab)
    return Results(
        plan,
        command,
        accuracy,
        throughput,
        lag,
        scrape,
        mem,
        timings,
        time.monotonic() - start,
        code if code == code_under_test() else f"{code}, then changed during the run",
        httpx2.note,
        series,
        browser_bench,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny counts: check the harness end to end (about a minute)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"Markdown file to write the figures into (full run default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--httpx2-python",
        default=os.environ.get("BENCH_HTTPX2_PYTHON"),
        help="interpreter of a virtualenv with httpx2, for the httpx2 what-if rows "
        "(default: $BENCH_HTTPX2_PYTHON; none: the rows are skipped with a note)",
    )
    args = parser.parse_args(argv)
    if not Path(BINARY).exists():
        print(
            f"{BINARY} not found: apt-get install -y prometheus-blackbox-exporter",
            file=sys.stderr,
        )
        return 2
    plan = Plan.for_mode(args.quick)
    command = "make bench" + (" BENCH_ARGS=--quick" if args.quick else "")
    if argv is None:
        command += f"  # or: python -m benchmarks {shlex.join(sys.argv[1:])}".rstrip()
    results = asyncio.run(run(plan, command, args.httpx2_python))
    report = render_report(results)
    print(report)
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    if output is not None:
        write_report(output, report)
        print(f"benchmark: wrote {output}", file=sys.stderr)
    return 0
