"""The HTTP stacks side by side: ``python -m benchmarks.stacks --httpx2-python PATH [--quick]``.

Only the rows that compare HTTP stacks, without the whole benchmark (which takes minutes and
both cores): added latency one check at a time (as in :mod:`benchmarks.accuracy`) and checks
per second and CPU per check at the highest concurrency (as in :mod:`benchmarks.throughput`),
for the agent's own transport under httpx (``agent-pooled``, the product), httpx's default
transport (``whatif-httpcore``), and httpx2 (``whatif-httpx2``: its default transport,
httpcore2; ``whatif-httpx2-agent-transport``: the agent's transport under httpx2's client).
Pooled connections, 127.0.0.1. Prints a Markdown report.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from benchmarks.accuracy import measure_accuracy
from benchmarks.agent_worker import AGENT_POOLED, HTTPCORE, HTTPCORE_POOLED
from benchmarks.httpx2 import HTTPX2, HTTPX2_AGENT, HTTPX2_POOLED, find_httpx2
from benchmarks.lab import Plan, open_lab
from benchmarks.report import machine, ms, per_s, table
from benchmarks.stats import ratio
from benchmarks.throughput import _rounds

ACCURACY_DELAYS = (0, 10)


def plan_for(quick: bool) -> Plan:
    """The full plan's counts (the quick one's with ``quick``), two delays, one concurrency."""
    plan = Plan.for_mode(quick)
    samples = plan.accuracy_samples[: len(ACCURACY_DELAYS)]
    top = max(plan.inflight)
    rounds = plan.throughput_rounds if quick else 3
    return replace(
        plan,
        accuracy_delays=ACCURACY_DELAYS,
        accuracy_samples=samples,
        inflight=(top,),
        throughput_rounds=rounds,
    )


async def run(quick: bool, httpx2_python: str | None) -> str:
    """Measure the stacks; return the Markdown report."""
    plan = plan_for(quick)
    httpx2 = await find_httpx2(httpx2_python)
    on_httpx2 = httpx2.python is not None
    accuracy_systems = (AGENT_POOLED, HTTPCORE_POOLED) + (
        (HTTPX2_POOLED, HTTPX2_AGENT) if on_httpx2 else ()
    )
    throughput_systems = (AGENT_POOLED, HTTPCORE) + ((HTTPX2, HTTPX2_AGENT) if on_httpx2 else ())
    top = plan.inflight[0]
    with tempfile.TemporaryDirectory(prefix="synthetic-stacks-") as tmp:
        async with open_lab(plan, Path(tmp), httpx2) as lab:
            accuracy = await measure_accuracy(lab, accuracy_systems)
            cells = await _rounds(lab, top, throughput_systems, None)
    lines = [f"Mode: {'quick (figures meaningless)' if quick else 'full'}; httpx2: {httpx2.note}."]
    lines += ["", "Added latency, one check at a time, pooled connection (ms):", ""]
    rows = []
    for (delay, system), cell in accuracy.cells.items():
        phases = cell.phases
        rows.append(
            [
                f"{delay} ms",
                system,
                ms(cell.measured.p50),
                ms(cell.measured.p99),
                ms(phases.p50) if phases is not None else "",
                ms(cell.measured.p50 - phases.p50) if phases is not None else "",
                f"{cell.measured.n}" + (f" ({cell.failed} failed)" if cell.failed else ""),
            ]
        )
    lines += table(
        ["delay", "system", "added p50", "added p99", "phases p50", "test minus phases", "n"],
        rows,
    )
    rounds = plan.throughput_rounds
    lines += ["", f"Throughput at {top} in flight, `/delay/0`, {rounds} rounds:", ""]
    base = cells[AGENT_POOLED]
    lines += table(
        ["system", "checks/s", "CPU ms per check", "CPU (cores)", "per CPU-s vs agent", "failed"],
        [
            [
                system,
                per_s(cell.per_second),
                ms(ratio(1000.0, cell.per_cpu_second)),
                f"{cell.cpu_share:.2f}",
                f"{ratio(cell.per_cpu_second, base.per_cpu_second):.2f}x",
                str(cell.failed),
            ]
            for system, cell in cells.items()
        ],
    )
    lines += ["", "Machine:", ""]
    lines += table(["", ""], [list(row) for row in machine("working tree", httpx2.note)[:7]])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stacks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts (harness check)")
    parser.add_argument(
        "--httpx2-python",
        default=os.environ.get("BENCH_HTTPX2_PYTHON"),
        help="interpreter of a virtualenv with httpx2 (default: $BENCH_HTTPX2_PYTHON)",
    )
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.quick, args.httpx2_python)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
