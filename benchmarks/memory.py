"""Memory: resident set size of the real agent (``synthetic-exporter serve``) against the
blackbox exporter and the plain-Python baseline of the issue.

Each agent figure is a fresh ``serve`` process with generated check files (one-test suites
that GET ``/delay/0``), measured once every suite has passed (``/healthz`` 200), before and
after three scrapes of ``/metrics``: idle (1 suite), 1,000 suites, and enough suites for
about 10,000 series (sized from the 1,000-suite process).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass, field

from benchmarks import procs, rawhttp
from benchmarks.lab import Lab, child_env

CHECKS = '''\
"""{n} generated one-test suites for the memory benchmark."""

from synthetic_exporter import Suite, T


def _make(i: int) -> Suite:
    suite = Suite(f"s{{i:05d}}")

    @suite.test
    async def check(t: T) -> None:
        response = await t.http.get("/delay/0")
        assert response.status_code == 200

    return suite


for _i in range({n}):
    globals()[f"suite_{{_i:05d}}"] = _make(_i)
'''
HEALTHY_TIMEOUT_SECONDS = 120.0
SCRAPES = 3


@dataclass
class AgentMemory:
    label: str
    suites: int
    series: int
    rss_before_scrape: int
    rss_after_scrapes: int
    ready_seconds: float


@dataclass
class Memory:
    baseline: dict[str, int] = field(default_factory=dict)
    imports: dict[str, int] = field(default_factory=dict)
    agents: list[AgentMemory] = field(default_factory=list)
    blackbox_idle: int = 0
    blackbox_after_load: int = 0


async def _python_stages(lab: Lab, *args: str) -> dict[str, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.memory_baseline",
        *args,
        stdout=asyncio.subprocess.PIPE,
        env=child_env(),
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    if process.returncode != 0:
        raise RuntimeError(f"memory_baseline {args} failed with status {process.returncode}")
    data: dict[str, int] = json.loads(out)
    return data


def _series(body: bytes, suite: str | None = None) -> int:
    lines = [line for line in body.splitlines() if line and not line.startswith(b"#")]
    if suite is None:
        return len(lines)
    marker = f'suite="{suite}"'.encode()
    return sum(1 for line in lines if marker in line)


async def _agent(lab: Lab, label: str, suites: int) -> tuple[AgentMemory, bytes]:
    home = lab.workdir / f"memory-{suites}"
    checks = home / "checks"
    checks.mkdir(parents=True, exist_ok=True)
    (checks / "generated.py").write_text(CHECKS.format(n=suites))
    env = child_env() | {
        "SYNTHETIC_LISTEN": "127.0.0.1:0",
        "SYNTHETIC_TARGETS__DEFAULT__BASE_URL": lab.target.url,
        "SYNTHETIC_STATE_DIR": str(home / "state"),
        "SYNTHETIC_INTERVAL": "1h",
        "SYNTHETIC_LOG_FORMAT": "json",
        "SYNTHETIC_LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    child = await procs.start(
        f"agent-{suites}",
        [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "serve"],
        home / "agent.log",
        marker="synthetic-exporter listening on ",
        env=env,
    )
    try:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
        while (await rawhttp.get(f"{child.url}/healthz")).status != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"agent with {suites} suites never became healthy")
            await asyncio.sleep(0.2)
        ready = time.monotonic() - started
        await asyncio.sleep(1.0)
        before = child.rss()
        body = b""
        for _ in range(SCRAPES):
            body = (await rawhttp.get(f"{child.url}/metrics")).body
        after = child.rss()
    finally:
        await procs.stop(child)
    return AgentMemory(label, suites, _series(body), before, after, ready), body


async def measure_memory(lab: Lab, blackbox_idle: int, blackbox_after_load: int) -> Memory:
    """Measure the baseline, the import costs and three agent processes."""
    plan = lab.plan
    result = Memory(blackbox_idle=blackbox_idle, blackbox_after_load=blackbox_after_load)
    result.baseline = await _python_stages(
        lab, "--mode", "baseline", "--target", lab.target.url, "--series", str(plan.scrape_series)
    )
    result.imports = await _python_stages(lab, "--mode", "agent-imports")
    idle, body = await _agent(lab, "idle: 1 suite", 1)
    fixed = _series(body) - _series(body, "s00000")
    many = plan.memory_suites
    loaded, _ = await _agent(lab, f"{many:,} suites", many)
    # Suites after the first reuse its connection (fewer phase series): average over many.
    per_suite = max((loaded.series - fixed) / many, 1.0)
    for_series = max(math.ceil((plan.scrape_series - fixed) / per_suite), 1)
    series, _ = await _agent(lab, f"about {plan.scrape_series:,} series", for_series)
    result.agents += [idle, series, loaded]
    return result
