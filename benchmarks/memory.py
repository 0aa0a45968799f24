"""Memory: resident set size of the real agent (``synthetic-exporter serve``) against the
blackbox exporter and the plain-Python baseline of the issue.

Each agent figure is a fresh ``serve`` process with generated check files (one-test suites
that GET ``/delay/0``), measured once every suite has passed (``/healthz`` 200), before and
after three scrapes of ``/metrics``: idle (no suite), 100 and 1,000 suites (their difference
is the cost per suite and per series: :func:`slope`), and enough suites for about 10,000 series
(sized from the 1,000-suite process). :mod:`benchmarks.budget` holds the accepted figures.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from dataclasses import dataclass, field

from benchmarks.lab import Lab, child_env
from benchmarks.serve_proc import serving

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
SCRAPES = 3
IDLE_LABEL = "idle: 0 suites"
DETAILED_LABEL = "detailed metrics"
# The same suites with every detailed family on: more series, nothing else changed.
DETAILED = {
    "SYNTHETIC_METRICS_DURATION_HISTOGRAMS": "true",
    "SYNTHETIC_METRICS_RUN_COUNTERS": "true",
    "SYNTHETIC_METRICS_HTTP_PER_TEST": "true",
}


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


async def _agent(
    lab: Lab, label: str, suites: int, env: dict[str, str] | None = None
) -> tuple[AgentMemory, bytes]:
    home = lab.workdir / f"memory-{suites}{'-detailed' if env else ''}"
    async with serving(home, CHECKS.format(n=suites), lab.target.url, env) as agent:
        await asyncio.sleep(1.0)
        before = agent.child.rss()
        body = b""
        for _ in range(SCRAPES):
            body = await agent.metrics()
        after = agent.child.rss()
    return AgentMemory(label, suites, _series(body), before, after, agent.ready_seconds), body


async def measure_memory(lab: Lab, blackbox_idle: int, blackbox_after_load: int) -> Memory:
    """Measure the baseline, the import costs and four agent processes: 0 suites (idle), the
    plan's middle and large suite counts (the slope: cost per suite and per series), and about
    the plan's scrape series."""
    plan = lab.plan
    result = Memory(blackbox_idle=blackbox_idle, blackbox_after_load=blackbox_after_load)
    result.baseline = await _python_stages(
        lab, "--mode", "baseline", "--target", lab.target.url, "--series", str(plan.scrape_series)
    )
    result.imports = await _python_stages(lab, "--mode", "agent-imports")
    idle, body = await _agent(lab, IDLE_LABEL, 0)
    fixed = _series(body)
    mid, _ = await _agent(lab, f"{plan.memory_mid_suites:,} suites", plan.memory_mid_suites)
    many = plan.memory_suites
    loaded, _ = await _agent(lab, f"{many:,} suites", many)
    detailed, _ = await _agent(lab, f"{many:,} suites, {DETAILED_LABEL}", many, DETAILED)
    # Suites after the first reuse its connection (fewer phase series): average over many.
    per_suite = max((loaded.series - fixed) / many, 1.0)
    for_series = max(math.ceil((plan.scrape_series - fixed) / per_suite), 1)
    label = f"about {plan.scrape_series:,} series"
    if for_series == mid.suites:  # the same process again: name the one measured
        mid.label = label
        result.agents += [idle, mid, loaded, detailed]
        return result
    series, _ = await _agent(lab, label, for_series)
    result.agents += [idle, mid, series, loaded, detailed]
    return result


def slope(memory: Memory) -> tuple[float, float]:
    """Return the RSS (after scrapes) each suite and each series adds, apart: bytes per suite
    and per series.

    Per series: between the largest suite count at default settings and the same suites with
    every detailed family on (more series, the same suites). Per suite: the growth between
    the middle and the largest suite count at default settings, less its series' share.
    """
    default = sorted(
        (a for a in memory.agents if a.suites > 0 and DETAILED_LABEL not in a.label),
        key=lambda a: a.suites,
    )
    low, high = default[0], default[-1]
    detailed = next(a for a in memory.agents if DETAILED_LABEL in a.label)
    per_series = max(detailed.rss_after_scrapes - high.rss_after_scrapes, 0) / max(
        detailed.series - high.series, 1
    )
    grown = high.rss_after_scrapes - low.rss_after_scrapes
    per_suite = (grown - per_series * (high.series - low.series)) / max(high.suites - low.suites, 1)
    return per_suite, per_series


def idle_agent(memory: Memory) -> AgentMemory:
    """Return the agent measured with no suite loaded."""
    return next(a for a in memory.agents if a.label == IDLE_LABEL)
