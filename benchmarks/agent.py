"""The agent driver: starts :mod:`benchmarks.agent_worker` and sends it commands."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import procs
from benchmarks.agent_worker import READY


class WorkerError(RuntimeError):
    """The agent worker reported a failed command."""


@dataclass
class AgentDriver:
    """A running agent worker process."""

    child: procs.Child

    @classmethod
    async def start(
        cls,
        target: str,
        workdir: Path,
        env: dict[str, str],
        name: str = "agent",
        python: str = sys.executable,
        module: str = "benchmarks.agent_worker",
        ca_bundle: Path | None = None,
    ) -> AgentDriver:
        """Start a worker; its state is in ``workdir/<name>-state``, its log ``<name>.log``.

        ``python`` and ``module``: another interpreter and launcher (the httpx2 what-ifs);
        ``ca_bundle``: the CA the worker's target trusts (an HTTPS target).
        """
        args = [
            python,
            "-m",
            module,
            "--target",
            target,
            "--state-dir",
            str(workdir / f"{name}-state"),
            *(["--ca-bundle", str(ca_bundle)] if ca_bundle is not None else []),
        ]
        child = await procs.start(
            name, args, workdir / f"{name}.log", marker=READY, env=env, stdin=True
        )
        return cls(child)

    async def call(self, cmd: str, limit: float, **args: Any) -> dict[str, Any]:
        """Send one command; wait (at most ``limit`` seconds) for its answer."""
        process = self.child.process
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await process.stdin.drain()

        async def answer() -> dict[str, Any]:
            assert process.stdout is not None
            while True:
                line = await process.stdout.readline()
                if not line:
                    raise WorkerError(f"agent worker exited during {cmd!r}")
                if line.startswith(b"RESULT "):
                    data: dict[str, Any] = json.loads(line[7:])
                    return data

        data = await asyncio.wait_for(answer(), limit)
        if "error" in data:
            raise WorkerError(f"{cmd}: {data['error']}")
        return data

    async def stop(self) -> None:
        process = self.child.process
        if process.stdin is not None and process.returncode is None:
            process.stdin.write(b"quit\n")
            try:
                await process.stdin.drain()
                await asyncio.wait_for(process.wait(), 10)
            except (TimeoutError, ConnectionError):
                pass
        await procs.stop(self.child)
