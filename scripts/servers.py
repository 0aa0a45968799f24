"""Start and stop the servers the scripts measure (the agent, the demo API), by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

LISTENING = re.compile(r"listening on (http://[^\s\"]+)")
# A log shared by several starts separates them with lines starting "\n=== ".
START_MARK = "\n=== "


def start(
    args: list[str], log: Path, env: dict[str, str], timeout: float = 60.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server appending to ``log``; wait (bounded) for its 'listening on' URL."""
    out: IO[bytes] = log.open("ab")
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text(errors="replace").rsplit(START_MARK, 1)[-1])
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{args[2:]} did not start; see {log}")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 20) -> None:
    """Send ``sig`` to the process (by pid) and wait for it; SIGKILL if it outlives ``wait``."""
    if process.poll() is None:
        os.kill(process.pid, sig)
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
