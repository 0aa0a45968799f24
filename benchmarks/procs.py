"""Child processes on 127.0.0.1: start (bounded wait for a marker line), stop by PID, and read
CPU time and resident memory from ``/proc`` (no psutil)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
PIPE_LIMIT = 64 * 1024 * 1024  # one answer line can carry thousands of samples


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Return a process's resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Child:
    """A started child process; ``url`` is what its marker line announced (if any)."""

    name: str
    process: asyncio.subprocess.Process
    url: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)


async def start(
    name: str,
    args: list[str],
    log: Path,
    *,
    marker: str | None = None,
    env: dict[str, str] | None = None,
    stdin: bool = False,
) -> Child:
    """Start a process (stderr to ``log``); if ``marker`` is given, wait for it on stdout."""
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env={**os.environ, **(env or {})},
            limit=PIPE_LIMIT,
        )
    child = Child(name, process)
    if marker is None:
        return child
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            line = await asyncio.wait_for(
                process.stdout.readline(), max(deadline - time.monotonic(), 0.01)
            )
        except TimeoutError:
            break
        if not line:
            break
        text = line.decode(errors="replace")
        if marker in text:
            child.url = text.split(marker, 1)[1].split()[0]
            return child
    await stop(child)
    raise RuntimeError(f"{name} did not start (see {log})")


async def stop(child: Child) -> None:
    """Terminate a child by its PID and wait for it (kill after a bounded wait)."""
    process = child.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
