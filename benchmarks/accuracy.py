"""Accuracy: how much latency each system adds to what the server really took.

One check at a time (no contention), interleaved in chunks with the systems' order rotated
every chunk. For every request the target records how long it held it; added latency is
``measured - held``. Blackbox: ``probe_duration_seconds`` (fresh connection, always) and the
sum of ``probe_http_duration_seconds`` phases. Agent: the test's ``duration_seconds`` and the
sum of its request's ``phases``, as recorded in the result. ``whatif-httpcore-pooled`` is the
agent's engine with one shared client on httpx's default transport (what the agent measured
before its own transport); ``reference-raw-asyncio`` a bare asyncio GET on a fresh connection.
``whatif-httpx2-pooled`` is the same on httpx2/httpcore2, when the lab has their interpreter
(:mod:`benchmarks.httpx2`). HTTPS: ``blackbox-https`` and ``agent-fresh-https`` against the
target's TLS listener (same host, CA and certificate), a new TLS connection per check, the
handshake inside both the measured time and the phases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.agent_worker import AGENT_FRESH, AGENT_POOLED, HTTPCORE_POOLED, REFERENCE
from benchmarks.blackbox import HTTP, HTTPS
from benchmarks.httpx2 import HTTPX2_POOLED
from benchmarks.lab import HTTPS_SUFFIX, Lab
from benchmarks.stats import Dist

BLACKBOX = "blackbox"
BLACKBOX_HTTPS = BLACKBOX + HTTPS_SUFFIX
AGENT_FRESH_HTTPS = AGENT_FRESH + HTTPS_SUFFIX
SYSTEMS = (
    BLACKBOX,
    AGENT_FRESH,
    AGENT_POOLED,
    HTTPCORE_POOLED,
    REFERENCE,
    BLACKBOX_HTTPS,
    AGENT_FRESH_HTTPS,
)
TIMEOUT_PER_SAMPLE = 2.0


@dataclass
class Cell:
    """Added latency of one system at one delay (milliseconds)."""

    measured: Dist
    phases: Dist | None
    failed: int


@dataclass
class Accuracy:
    """Cells by (delay in ms, system)."""

    cells: dict[tuple[int, str], Cell] = field(default_factory=dict)


@dataclass
class _Raw:
    measured: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    failed: int = 0


def baseline_of(system: str) -> str:
    """Return the blackbox system ``system`` is compared with: HTTPS with HTTPS."""
    return BLACKBOX_HTTPS if system.endswith(HTTPS_SUFFIX) else BLACKBOX


async def _blackbox_chunk(
    lab: Lab, system: str, delay: int, prefix: str, n: int, raw: _Raw
) -> None:
    connection = lab.blackbox.connection()
    base = lab.url_for(system)
    module = HTTPS if system.endswith(HTTPS_SUFFIX) else HTTP
    try:
        for j in range(n):
            key = f"{prefix}{j}"
            probe = await lab.blackbox.probe(connection, f"{base}/delay/{delay}/{key}", module)
            if not probe.success:
                raw.failed += 1
                continue
            raw.measured[key] = probe.duration
            raw.phases[key] = sum(probe.phases.values())
    finally:
        await connection.close()


async def _agent_chunk(lab: Lab, system: str, delay: int, prefix: str, n: int, raw: _Raw) -> None:
    agent, kind = lab.driver_for(system)
    answer = await agent.call(
        "accuracy",
        limit=n * TIMEOUT_PER_SAMPLE + delay / 1000 * n + 10,
        kind=kind,
        delay_ms=delay,
        n=n,
        prefix=prefix,
    )
    for sample in answer["samples"]:
        if not sample["ok"]:
            raw.failed += 1
            continue
        raw.measured[sample["id"]] = float(sample["test"])
        if sample.get("phases") is not None:
            raw.phases[sample["id"]] = float(sample["phases"])


async def measure_accuracy(lab: Lab, systems: tuple[str, ...] | None = None) -> Accuracy:
    """Measure added latency at every planned delay, all ``systems`` (default: every one the
    lab can run) interleaved."""
    plan = lab.plan
    if systems is None:
        systems = SYSTEMS + ((HTTPX2_POOLED,) if lab.httpx2_agent is not None else ())
    result = Accuracy()
    for delay, samples in zip(plan.accuracy_delays, plan.accuracy_samples, strict=True):
        raws = {system: _Raw() for system in systems}
        chunks = max(samples // plan.accuracy_chunk, 1)
        for c in range(chunks):
            order = systems[c % len(systems) :] + systems[: c % len(systems)]
            for s, system in enumerate(order):
                prefix = f"a{delay}c{c}s{s}-"
                if system in (BLACKBOX, BLACKBOX_HTTPS):
                    await _blackbox_chunk(
                        lab, system, delay, prefix, plan.accuracy_chunk, raws[system]
                    )
                else:
                    await _agent_chunk(
                        lab, system, delay, prefix, plan.accuracy_chunk, raws[system]
                    )
        for system, raw in raws.items():
            held = await lab.held(list(raw.measured))
            added = [(raw.measured[k] - held[k]) * 1000 for k in raw.measured if k in held]
            phases = [(raw.phases[k] - held[k]) * 1000 for k in raw.phases if k in held]
            missing = sum(1 for k in raw.measured if k not in held)
            result.cells[(delay, system)] = Cell(
                Dist.of(added), Dist.of(phases) if phases else None, raw.failed + missing
            )
    return result
