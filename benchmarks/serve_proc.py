"""A real ``synthetic-exporter serve`` process over generated check files, for the memory and
series measurements: started on 127.0.0.1, waited for until every suite passed once
(``/healthz`` 200, bounded), stopped by its PID on the way out."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import procs, rawhttp
from benchmarks.lab import child_env

HEALTHY_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Serving:
    """A healthy ``serve`` process and how long it took to become healthy."""

    child: procs.Child
    ready_seconds: float

    async def metrics(self) -> bytes:
        """Scrape ``/metrics`` once (text format, uncompressed)."""
        return (await rawhttp.get(f"{self.child.url}/metrics")).body


@asynccontextmanager
async def serving(
    home: Path, checks_source: str, target_url: str, env: dict[str, str] | None = None
) -> AsyncIterator[Serving]:
    """Run ``serve`` with ``checks_source`` as its one check file and ``target_url`` as the
    ``default`` target (``env``: more ``SYNTHETIC_`` settings); state and log under ``home``."""
    checks = home / "checks"
    checks.mkdir(parents=True, exist_ok=True)
    (checks / "generated.py").write_text(checks_source)
    settings = {
        "SYNTHETIC_LISTEN": "127.0.0.1:0",
        "SYNTHETIC_TARGETS__DEFAULT__BASE_URL": target_url,
        "SYNTHETIC_STATE_DIR": str(home / "state"),
        "SYNTHETIC_INTERVAL": "1h",
        "SYNTHETIC_LOG_FORMAT": "json",
        "SYNTHETIC_LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    child = await procs.start(
        f"serve-{home.name}",
        [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "serve"],
        home / "agent.log",
        marker="synthetic-exporter listening on ",
        env=child_env() | settings | (env or {}),
    )
    try:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
        while (await rawhttp.get(f"{child.url}/healthz")).status != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve in {home} never became healthy (see its agent.log)")
            await asyncio.sleep(0.2)
        yield Serving(child, time.monotonic() - started)
    finally:
        await procs.stop(child)
