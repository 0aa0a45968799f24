"""What-if rows on httpx2/httpcore2 (Pydantic's continuation of httpx), from another interpreter.

httpx2 is not a dependency of the agent, so its rows run in a second agent worker started with
the interpreter of a separate virtualenv (``--httpx2-python``; ``make bench BENCH_ARGS=...``)
that has the agent's runtime dependencies and httpx2/httpcore2. That worker calls
``httpx2.alias_httpx()`` before anything imports httpx, so the agent's unchanged code, and its
checks' ordinary httpx calls, run on httpx2. Its kinds, as the usual worker kinds there:

- ``whatif-httpx2`` / ``whatif-httpx2-pooled``: ``whatif-httpcore(-pooled)`` on httpx2, i.e. the
  agent's engine with one shared client on httpx2's default transport (httpcore2);
- ``whatif-httpx2-agent-transport``: ``agent-pooled`` on httpx2: the agent's own HTTP/1.1
  transport under httpx2's client.

Without the interpreter (or without httpx2 in it) the rows are skipped with a note.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from benchmarks.agent_worker import AGENT_POOLED, HTTPCORE, HTTPCORE_POOLED

HTTPX2 = "whatif-httpx2"
HTTPX2_POOLED = "whatif-httpx2-pooled"
HTTPX2_AGENT = "whatif-httpx2-agent-transport"
# What the httpx2 worker runs for each what-if system.
KINDS = {HTTPX2: HTTPCORE, HTTPX2_POOLED: HTTPCORE_POOLED, HTTPX2_AGENT: AGENT_POOLED}
WORKER_MODULE = "benchmarks.httpx2_worker"
PROBE = "import httpx2, httpcore2; print(httpx2.__version__, httpcore2.__version__)"
PROBE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Httpx2:
    """The interpreter for the httpx2 rows, if usable; ``note`` says what was used or why not."""

    python: str | None
    note: str


async def find_httpx2(python: str | None) -> Httpx2:
    """Check that ``python`` imports httpx2 and httpcore2; say which versions, or why not."""
    if not python:
        return Httpx2(None, "skipped: no --httpx2-python interpreter given")
    try:
        process = await asyncio.create_subprocess_exec(
            python,
            "-c",
            PROBE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return Httpx2(None, f"skipped: cannot run {python}: {exc}")
    try:
        out, err = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return Httpx2(None, f"skipped: {python} did not answer")
    if process.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        return Httpx2(None, f"skipped: httpx2 not importable by {python} ({last})")
    httpx2_version, httpcore2_version = out.decode().split()
    return Httpx2(python, f"httpx2 {httpx2_version} / httpcore2 {httpcore2_version} ({python})")
