"""Throughput: HTTP checks per second and per CPU-second, N checks always in flight.

Closed loops against ``/delay/0``, the systems interleaved round by round (order rotated).
Blackbox: N concurrent ``/probe`` requests from the harness (the harness's own CPU is not
counted; Prometheus would be doing that work). Agent: N concurrent one-test suites, each run
through ``Coordinator.run_batch`` with every listener ``serve`` attaches. CPU is read from
``/proc/<pid>/stat`` over the measured window only (after a warm-up).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from benchmarks.lab import Lab
from benchmarks.procs import cpu_seconds
from benchmarks.stats import ratio

BLACKBOX = "blackbox"
SYSTEMS = (BLACKBOX, "agent-pooled", "agent-fresh")
# Measured at the highest concurrency only: evidence for design changes, not the agent.
WHATIFS = ("whatif-client-per-worker", "whatif-raw-transport", "whatif-engine-only")
STOP_GRACE_SECONDS = 30.0


@dataclass
class Cell:
    """Totals of one system at one concurrency, over every round."""

    checks: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    target_cpu_seconds: float = 0.0
    harness_cpu_seconds: float = 0.0
    failed: int = 0

    @property
    def per_second(self) -> float:
        return ratio(self.checks, self.seconds)

    @property
    def per_cpu_second(self) -> float:
        return ratio(self.checks, self.cpu_seconds)

    @property
    def cpu_share(self) -> float:
        """CPU used, in cores (1.0 = one core busy all the time)."""
        return ratio(self.cpu_seconds, self.seconds)

    @property
    def target_cpu_share(self) -> float:
        return ratio(self.target_cpu_seconds, self.seconds)

    @property
    def harness_cpu_share(self) -> float:
        """CPU of this harness (which drives blackbox's probes), in cores."""
        return ratio(self.harness_cpu_seconds, self.seconds)


@dataclass
class Throughput:
    cells: dict[tuple[int, str], Cell] = field(default_factory=dict)
    blackbox_rss_after: int = 0


async def _blackbox_round(lab: Lab, inflight: int, cell: Cell) -> None:
    plan = lab.plan
    target = f"{lab.target.url}/delay/0"
    done = [0]
    failed = [0]
    end = time.monotonic() + plan.throughput_warmup + plan.throughput_seconds

    async def loop() -> None:
        connection = lab.blackbox.connection()
        try:
            while time.monotonic() < end:
                probe = await lab.blackbox.probe(connection, target)
                done[0] += 1
                failed[0] += not probe.success
        finally:
            await connection.close()

    async def window() -> None:
        await asyncio.sleep(plan.throughput_warmup)
        t0, n0 = time.monotonic(), done[0]
        c0, tc0, hc0 = lab.blackbox.child.cpu(), lab.target.cpu(), cpu_seconds(os.getpid())
        await asyncio.sleep(plan.throughput_seconds)
        cell.checks += done[0] - n0
        cell.seconds += time.monotonic() - t0
        cell.cpu_seconds += lab.blackbox.child.cpu() - c0
        cell.target_cpu_seconds += lab.target.cpu() - tc0
        cell.harness_cpu_seconds += cpu_seconds(os.getpid()) - hc0

    async with asyncio.timeout(
        plan.throughput_warmup + plan.throughput_seconds + STOP_GRACE_SECONDS
    ):
        await asyncio.gather(window(), *(loop() for _ in range(inflight)))
    cell.failed += failed[0]


async def _agent_round(lab: Lab, system: str, inflight: int, cell: Cell) -> None:
    plan = lab.plan
    c0 = lab.target.cpu()
    t0 = time.monotonic()
    answer = await lab.agent.call(
        "throughput",
        limit=plan.throughput_warmup + plan.throughput_seconds + STOP_GRACE_SECONDS + 30,
        kind=system,
        inflight=inflight,
        seconds=plan.throughput_seconds,
        warmup=plan.throughput_warmup,
    )
    elapsed = time.monotonic() - t0
    cell.checks += int(answer["checks"])
    cell.seconds += float(answer["seconds"])
    cell.cpu_seconds += float(answer["cpu_seconds"])
    # The target's CPU over the whole command, scaled to the measured window.
    cell.target_cpu_seconds += (lab.target.cpu() - c0) * float(answer["seconds"]) / elapsed
    cell.failed += int(answer["failed"])


async def measure_throughput(lab: Lab) -> Throughput:
    """Measure every system at every planned concurrency, interleaved round by round."""
    plan = lab.plan
    result = Throughput()
    top = max(plan.inflight)
    for inflight in plan.inflight:
        systems = SYSTEMS + (WHATIFS if inflight == top else ())
        for round_ in range(plan.throughput_rounds):
            shift = round_ % len(systems)
            for system in systems[shift:] + systems[:shift]:
                cell = result.cells.setdefault((inflight, system), Cell())
                if system == BLACKBOX:
                    await _blackbox_round(lab, inflight, cell)
                else:
                    await _agent_round(lab, system, inflight, cell)
    result.blackbox_rss_after = lab.blackbox.child.rss()
    return result
