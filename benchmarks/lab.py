"""What every measurement works with: the target, the blackbox exporter, the agent, the plan.

The target serves plain HTTP and HTTPS (a ``trustme`` CA: :mod:`benchmarks.tls`) from one
process; blackbox_exporter trusts the CA in its ``http_2xx_tls`` module; a second agent worker
(``agent-tls``) has the HTTPS URL as its ``default`` target, with the CA as ``ca_bundle``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import procs, rawhttp
from benchmarks.agent import AgentDriver
from benchmarks.blackbox import Blackbox
from benchmarks.httpx2 import KINDS, WORKER_MODULE, Httpx2
from benchmarks.tls import TlsFiles, write_tls_files

HELD_BATCH = 200
HTTPS_SUFFIX = "-https"  # a system measured against the HTTPS listener (agent: agent-tls)


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to measure. ``quick`` only proves the harness runs end to end."""

    quick: bool
    accuracy_delays: tuple[int, ...] = (0, 10, 100)
    accuracy_samples: tuple[int, ...] = (300, 300, 120)
    accuracy_chunk: int = 10
    inflight: tuple[int, ...] = (1, 10, 100)
    throughput_seconds: float = 3.0
    throughput_warmup: float = 0.5
    throughput_rounds: int = 2
    lag_scheduled: tuple[int, ...] = (1000, 10000)
    lag_interval: float = 60.0
    lag_window: float = 2.5
    lag_rounds: int = 1
    render_sizes: tuple[int, ...] = (1000, 10000, 50000)
    render_reps: tuple[int, ...] = (60, 30, 10)
    scrape_series: int = 10000
    interference_rounds: int = 16
    interference_seconds: float = 2.0
    memory_suites: int = 1000
    memory_mid_suites: int = 100
    series_suites: int = 10

    @classmethod
    def for_mode(cls, quick: bool) -> Plan:
        if not quick:
            return cls(quick=False)
        return cls(
            quick=True,
            accuracy_samples=(4, 4, 4),
            accuracy_chunk=2,
            throughput_seconds=0.3,
            throughput_warmup=0.1,
            throughput_rounds=1,
            lag_scheduled=(50, 100),
            lag_interval=0.3,
            lag_window=0.4,
            lag_rounds=1,
            render_sizes=(1000, 2000, 3000),
            render_reps=(3, 3, 3),
            scrape_series=1000,
            interference_rounds=4,
            interference_seconds=0.3,
            memory_suites=20,
            memory_mid_suites=10,
            series_suites=2,
        )


@dataclass
class Lab:
    """The processes under test, all on 127.0.0.1."""

    plan: Plan
    workdir: Path
    target: procs.Child
    blackbox: Blackbox
    agent: AgentDriver
    blackbox_idle_rss: int
    tls: TlsFiles
    tls_url: str
    tls_agent: AgentDriver
    httpx2: Httpx2 = field(default_factory=lambda: Httpx2(None, "skipped"))
    httpx2_agent: AgentDriver | None = None

    def url_for(self, system: str) -> str:
        """Return the target's base URL for ``system``: HTTPS for ``*-https`` systems."""
        return self.tls_url if system.endswith(HTTPS_SUFFIX) else self.target.url

    def driver_for(self, system: str) -> tuple[AgentDriver, str]:
        """Return the worker that measures ``system`` and the kind it runs for it."""
        if system.endswith(HTTPS_SUFFIX):
            return self.tls_agent, system.removesuffix(HTTPS_SUFFIX)
        if system in KINDS:
            assert self.httpx2_agent is not None, f"{system}: {self.httpx2.note}"
            return self.httpx2_agent, KINDS[system]
        return self.agent, system

    @asynccontextmanager
    async def another_agent(self, name: str) -> AsyncIterator[AgentDriver]:
        """Start a second agent worker (own state dir and log under ``workdir``); stop it by PID
        on the way out."""
        agent = await AgentDriver.start(self.target.url, self.workdir, child_env(), name)
        try:
            yield agent
        finally:
            await agent.stop()

    async def held(self, ids: list[str]) -> dict[str, float]:
        """Return how long the target held each of these requests (seconds)."""
        found: dict[str, float] = {}
        for i in range(0, len(ids), HELD_BATCH):
            batch = ",".join(ids[i : i + HELD_BATCH])
            response = await rawhttp.get(f"{self.target.url}/held?ids={batch}")
            found.update({str(k): float(v) for k, v in json.loads(response.body).items()})
        return found


def child_env() -> dict[str, str]:
    """Return the environment for children: no ``SYNTHETIC_`` settings from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


@asynccontextmanager
async def open_lab(plan: Plan, workdir: Path, httpx2: Httpx2 | None = None) -> AsyncIterator[Lab]:
    """Start the target, the blackbox exporter and the agent (and the httpx2 worker, when
    ``httpx2`` has an interpreter); stop them by PID afterwards."""
    env = child_env()
    tls = write_tls_files(workdir / "tls")
    tls_port = procs.free_port()
    target = await procs.start(
        "target",
        [
            sys.executable,
            "-m",
            "benchmarks.target",
            "--port",
            "0",
            "--tls-port",
            str(tls_port),
            "--tls-chain",
            str(tls.chain),
            "--tls-key",
            str(tls.key),
        ],
        workdir / "target.log",
        marker="listening on ",
        env=env,
    )
    tls_url = f"https://127.0.0.1:{tls_port}"
    blackbox: Blackbox | None = None
    agent: AgentDriver | None = None
    tls_agent: AgentDriver | None = None
    other: AgentDriver | None = None
    httpx2 = httpx2 or Httpx2(None, "skipped: no --httpx2-python interpreter given")
    try:
        blackbox = await Blackbox.start(workdir, tls.ca)
        idle_rss = blackbox.child.rss()
        agent = await AgentDriver.start(target.url, workdir, env)
        tls_agent = await AgentDriver.start(tls_url, workdir, env, "agent-tls", ca_bundle=tls.ca)
        if httpx2.python is not None:
            other = await AgentDriver.start(
                target.url, workdir, env, "agent-httpx2", httpx2.python, WORKER_MODULE
            )
        yield Lab(
            plan, workdir, target, blackbox, agent, idle_rss, tls, tls_url, tls_agent, httpx2, other
        )
    finally:
        if other is not None:
            await other.stop()
        if tls_agent is not None:
            await tls_agent.stop()
        if agent is not None:
            await agent.stop()
        if blackbox is not None:
            await blackbox.stop()
        await procs.stop(target)
