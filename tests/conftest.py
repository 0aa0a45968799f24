"""Shared fixtures: a real demo API on 127.0.0.1, engines on temp state dirs, CLI runs."""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from loguru import logger

from synthetic_exporter.core.settings import Settings, TargetSettings

# pytester: the pytest plugin (tests/app/test_pytest_plugin.py) runs pytest in subprocesses.
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 20


def fresh_python(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ``code`` in a new interpreter (what a fresh agent process imports and does); return
    the words it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.split()


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (the agent's production backend)."""
    return "asyncio"


@pytest.fixture
def caplog_loguru(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Forward loguru records into pytest's caplog."""
    handler_id = logger.add(caplog.handler, format="{message}", level=0)
    caplog.set_level(logging.DEBUG)
    yield caplog
    logger.remove(handler_id)


@dataclass(frozen=True)
class Server:
    """A process serving HTTP on 127.0.0.1."""

    url: str
    process: subprocess.Popen[str]
    output: queue.Queue[str] | None = None
    """The lines the process printed after its 'listening on' line (stdout and stderr)."""

    def lines_so_far(self) -> list[str]:
        """Return the output lines printed so far (each line once)."""
        lines = []
        while self.output is not None and not self.output.empty():
            lines.append(self.output.get_nowait())
        return lines


def start_process(args: list[str], marker: str, env: dict[str, str] | None = None) -> Server:
    """Start a server process and wait (bounded) for its 'listening on URL' line."""
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        seen.append(line)
        if marker in line:
            url = line.split(marker, 1)[1].split()[0]
            return Server(url, process, lines)
    process.kill()
    process.wait()
    raise RuntimeError(f"server did not start: {''.join(seen)}")


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    """Read a process's output into a queue until it closes (keeps the pipe drained)."""
    with stream:
        for line in stream:
            lines.put(line)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a process by PID and wait for it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def demo_api_server() -> Iterator[str]:
    """Run the demo API as a real server on 127.0.0.1; yield its base URL."""
    server = start_process(
        [sys.executable, "-m", "synthetic_exporter.demo", "--host", "127.0.0.1", "--port", "0"],
        "listening on ",
    )
    try:
        yield server.url
    finally:
        stop_process(server.process)


@pytest.fixture(scope="session")
def demo_api() -> Iterator[str]:
    """The demo API, shared by the tests that inject no faults."""
    with demo_api_server() as url:
        yield url


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """Return a factory of settings with a temp state dir and an optional default target."""

    def make(base_url: str | None = None, **overrides: object) -> Settings:
        targets = {"default": TargetSettings(base_url=base_url)} if base_url else {}
        values: dict[str, object] = {"state_dir": tmp_path / "state", "targets": targets}
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


def write_checks(directory: Path, files: dict[str, str]) -> Path:
    """Write check files (dedented) into ``directory``; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        (directory / name).write_text(textwrap.dedent(source), encoding="utf-8")
    return directory


@dataclass(frozen=True)
class CliRun:
    """A finished CLI run."""

    returncode: int
    stdout: str
    stderr: str


def cli_env(state_dir: Path, base_url: str | None, **extra: str) -> dict[str, str]:
    """Return the environment for a CLI subprocess: only SYNTHETIC_ settings we choose."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    env.update({"SYNTHETIC_STATE_DIR": str(state_dir), "SYNTHETIC_LOG_FORMAT": "json"})
    if base_url:
        env["SYNTHETIC_TARGETS__DEFAULT__BASE_URL"] = base_url
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> CliRun:
    """Run ``synthetic-exporter ARGS`` as a subprocess and wait for it."""
    done = subprocess.run(
        [sys.executable, "-m", "synthetic_exporter", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return CliRun(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def fresh_demo_api() -> Iterator[str]:
    """A demo API of this test's own, so that injected faults stay here."""
    with demo_api_server() as url:
        yield url


def start_demo(state: Path, interval: str = "1s", **env: str) -> Server:
    """Start ``synthetic-exporter demo`` (every example suite with all its targets)."""
    return start_process(
        [
            sys.executable,
            "-m",
            "synthetic_exporter",
            "--checks",
            str(ROOT / "checks"),
            "demo",
            "--interval",
            interval,
        ],
        "synthetic-exporter listening on ",
        cli_env(state, None, SYNTHETIC_LISTEN="127.0.0.1:0", **env),
    )


def start_agent(checks: Path, state: Path, target: str | None, **env: str) -> Server:
    """Start ``synthetic-exporter serve`` on a free port of 127.0.0.1."""
    return start_process(
        [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "serve"],
        "synthetic-exporter listening on ",
        cli_env(state, target, SYNTHETIC_LISTEN="127.0.0.1:0", **env),
    )


def wait_for_health(agent: str, status: int, seconds: float = 30) -> dict[str, Any]:
    """Poll /healthz (bounded) until it answers ``status``; return its body."""
    deadline = time.monotonic() + seconds
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{agent}/healthz", timeout=5)
        body = r.json()
        if r.status_code == status:
            return body
        time.sleep(0.2)
    raise AssertionError(f"/healthz did not answer {status} within {seconds}s: {body}")
