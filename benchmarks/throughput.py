"""Throughput: HTTP checks per second and per CPU-second, N checks always in flight.

Closed loops against ``/delay/0``, the systems interleaved round by round (order rotated).
Blackbox: N concurrent ``/probe`` requests from the harness (the harness's own CPU is not
counted; Prometheus would be doing that work). Agent: N concurrent one-test suites, each run
through ``Coordinator.run_batch`` with every listener ``serve`` attaches. At the highest
concurrency only: ``agent-pooled-2-shards``, two agent processes (what ``SYNTHETIC_SHARD=0/2``
and ``1/2`` run) each keeping half the checks in flight, commanded at once; and the what-ifs
(those on httpx2 when the lab has its interpreter: :mod:`benchmarks.httpx2`).
CPU is read from ``/proc/<pid>/stat`` over the measured window only (after a warm-up).
HTTPS: ``blackbox-https`` and ``agent-fresh-https`` against the target's TLS listener, a new TLS
connection (full handshake) per check.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.accuracy import AGENT_FRESH_HTTPS, BLACKBOX_HTTPS
from benchmarks.agent import AgentDriver
from benchmarks.agent_worker import AGENT_FRESH, AGENT_POOLED, ENGINE_ONLY, HTTPCORE
from benchmarks.blackbox import HTTP, HTTPS
from benchmarks.httpx2 import HTTPX2, HTTPX2_AGENT
from benchmarks.lab import Lab
from benchmarks.procs import cpu_seconds
from benchmarks.stats import ratio

BLACKBOX = "blackbox"
SYSTEMS = (BLACKBOX, AGENT_POOLED, AGENT_FRESH, BLACKBOX_HTTPS, AGENT_FRESH_HTTPS)
BLACKBOXES = (BLACKBOX, BLACKBOX_HTTPS)
# Measured at the highest concurrency only: a deployment of two processes, and what-ifs
# (evidence for design changes, not the agent).
SHARDED = "agent-pooled-2-shards"
WHATIFS = (HTTPCORE, ENGINE_ONLY)
HTTPX2_WHATIFS = (HTTPX2, HTTPX2_AGENT)
TOP_ONLY = (SHARDED, *WHATIFS)
SHARD_AGENT = "agent-shard2"
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


async def _blackbox_round(lab: Lab, system: str, inflight: int, cell: Cell) -> None:
    plan = lab.plan
    target = f"{lab.url_for(system)}/delay/0"
    module = HTTPS if system == BLACKBOX_HTTPS else HTTP
    done = [0]
    failed = [0]
    end = time.monotonic() + plan.throughput_warmup + plan.throughput_seconds

    async def loop() -> None:
        connection = lab.blackbox.connection()
        try:
            while time.monotonic() < end:
                probe = await lab.blackbox.probe(connection, target, module)
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


async def _agent_round(
    lab: Lab, shards: list[tuple[AgentDriver, int]], kind: str, cell: Cell
) -> None:
    """Command every (worker, in flight) of ``shards`` at once to run ``kind``; add up.

    Checks, CPU and failures are summed over the workers; the window is their mean.
    """
    plan = lab.plan

    async def one(agent: AgentDriver, inflight: int) -> dict[str, Any]:
        return await agent.call(
            "throughput",
            limit=plan.throughput_warmup + plan.throughput_seconds + STOP_GRACE_SECONDS + 30,
            kind=kind,
            inflight=inflight,
            seconds=plan.throughput_seconds,
            warmup=plan.throughput_warmup,
        )

    c0 = lab.target.cpu()
    t0 = time.monotonic()
    answers = await asyncio.gather(*(one(agent, inflight) for agent, inflight in shards))
    elapsed = time.monotonic() - t0
    seconds = sum(float(a["seconds"]) for a in answers) / len(answers)
    cell.checks += sum(int(a["checks"]) for a in answers)
    cell.seconds += seconds
    cell.cpu_seconds += sum(float(a["cpu_seconds"]) for a in answers)
    # The target's CPU over the whole command, scaled to the measured window.
    cell.target_cpu_seconds += (lab.target.cpu() - c0) * seconds / elapsed
    cell.failed += sum(int(a["failed"]) for a in answers)


async def _rounds(
    lab: Lab, inflight: int, systems: tuple[str, ...], second: AgentDriver | None
) -> dict[str, Cell]:
    """Measure ``systems`` at ``inflight``, round by round, the order rotated every round."""
    cells: dict[str, Cell] = {}
    half = inflight // 2
    for round_ in range(lab.plan.throughput_rounds):
        shift = round_ % len(systems)
        for system in systems[shift:] + systems[:shift]:
            cell = cells.setdefault(system, Cell())
            if system in BLACKBOXES:
                await _blackbox_round(lab, system, inflight, cell)
            elif system == SHARDED:
                assert second is not None
                shards = [(lab.agent, inflight - half), (second, half)]
                await _agent_round(lab, shards, AGENT_POOLED, cell)
            else:
                agent, kind = lab.driver_for(system)
                await _agent_round(lab, [(agent, inflight)], kind, cell)
    return cells


async def measure_throughput(lab: Lab) -> Throughput:
    """Measure every system at every planned concurrency, interleaved round by round."""
    plan = lab.plan
    result = Throughput()
    top = max(plan.inflight)
    top_only = TOP_ONLY + (HTTPX2_WHATIFS if lab.httpx2_agent is not None else ())
    for inflight in plan.inflight:
        if inflight == top:
            async with lab.another_agent(SHARD_AGENT) as second:
                cells = await _rounds(lab, inflight, SYSTEMS + top_only, second)
        else:
            cells = await _rounds(lab, inflight, SYSTEMS, None)
        result.cells.update({(inflight, system): cell for system, cell in cells.items()})
    result.blackbox_rss_after = lab.blackbox.child.rss()
    return result
