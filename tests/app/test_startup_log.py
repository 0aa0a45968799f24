"""The agent's first log lines: what it loaded, its targets (no secrets), where it listens."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthetic_exporter.app.startup_log import log_startup
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.core.version import __version__
from synthetic_exporter.engine.loader import load
from tests.conftest import Server, cli_env, stop_process, write_checks

PASSWORD = "pa55w0rd-in-url"
SECRET = "hunter2-api-key"

CHECKS = """
from synthetic_exporter import Suite, T

probe = Suite("probe", interval="1h")
orders = Suite("orders", depends_on=["probe"], interval="1h")


@probe.test
async def ping(t: T) -> None:
    await t.http.get("/ping")


@orders.test
async def create_order(t: T) -> None:
    pass
"""

MARKER = "synthetic-exporter listening on "


def start_keeping_every_line(args: list[str], env: dict[str, str]) -> Server:
    """Start a process whose output (stdout and stderr) is read into a queue from its first line.

    ``start_agent`` drops the lines before its 'listening on' line: the start-up summary.
    """
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return Server("", process, lines)


def read_until(server: Server, done: str, seconds: float = 20) -> list[str]:
    """Return the lines the server prints up to the first containing ``done`` (bounded)."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.output is not None
        try:
            line = server.output.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        lines.append(line)
        if done in line:
            return lines
    raise AssertionError(f"no line with {done!r} within {seconds}s: {''.join(lines)}")


def runs_listed(agent: str, count: int, seconds: float = 10) -> str:
    """Return /api/v1/runs once it lists ``count`` runs (the history is written off the loop)."""
    deadline = time.monotonic() + seconds
    body = ""
    while time.monotonic() < deadline:
        body = httpx.get(f"{agent}/api/v1/runs", timeout=5).text
        if len(json.loads(body)["runs"]) >= count:
            return body
        time.sleep(0.1)
    raise AssertionError(f"/api/v1/runs did not list {count} runs in {seconds}s: {body}")


def records(lines: list[str]) -> list[dict[str, Any]]:
    """Return the JSON log records among printed lines."""
    return [json.loads(line) for line in lines if line.startswith("{")]


def by_message(logged: list[dict[str, Any]], start: str) -> dict[str, Any]:
    """Return the one record whose message starts with ``start``."""
    (found,) = [r for r in logged if r["message"].startswith(start)]
    return found


@pytest.mark.slow
def test_the_agent_says_what_it_loaded_and_where_it_listens(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"probe.py": CHECKS})
    target = f"http://probe:{PASSWORD}@127.0.0.1:1/{SECRET}"
    env = cli_env(
        tmp_path / "state",
        target,
        SYNTHETIC_LISTEN="127.0.0.1:0",
        SYNTHETIC_ENVIRONMENT="staging",
        SYNTHETIC_SHARD="0/1",
        SYNTHETIC_SECRETS__API_KEY=SECRET,
        SYNTHETIC_TARGETS__CDN__BASE_URL="https://cdn.example.com",
        SYNTHETIC_TARGETS__CDN__HTTP2="true",
        SYNTHETIC_TARGETS__CDN__IP_PROTOCOL="ip6",
        SYNTHETIC_TARGETS__CDN__MAX_BODY_BYTES="50MiB",
    )
    args = [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "serve"]
    agent = start_keeping_every_line(args, env)
    try:
        lines = read_until(agent, MARKER)
        url = lines[-1].split(MARKER, 1)[1].strip()
        lines += read_until(agent, "suite orders skipped")
        runs = runs_listed(url, count=2)
    finally:
        stop_process(agent.process)
    logged = records(lines)
    printed = "".join(lines)
    assert PASSWORD not in printed
    assert SECRET not in printed

    starting = by_message(logged, f"synthetic-exporter {__version__} starting: ")
    assert starting["message"].endswith("starting: 2 suites, 2 tests from " + str(checks))
    assert starting["level"] == "INFO"
    assert starting["suites"] == 2
    assert starting["tests"] == 2
    assert starting["load_errors"] == 0
    assert starting["checks_path"] == str(checks)
    where = by_message(logged, "environment ")
    assert where["message"] == f"environment staging, shard 0/1, state in {tmp_path / 'state'}"
    assert (where["environment"], where["shard"]) == ("staging", "0/1")
    suites = by_message(logged, "suites: ")
    assert (
        suites["message"]
        == "suites: probe (1 test, every 1h), orders (1 test, every 1h, after probe)"
    )
    default = by_message(logged, "target default: ")
    assert default["base_url"] == "http://probe:***@127.0.0.1:1/***"
    assert by_message(logged, "target cdn: ")["message"] == (
        "target cdn: https://cdn.example.com (HTTP/2, IPv6 first, bodies up to 50.0 MiB)"
    )
    intervals = by_message(logged, "intervals: ")
    assert intervals["message"].startswith("intervals: 2 suites every 1h; default 5m;")
    assert intervals["failure_reminder_seconds"] == 3600
    assert by_message(logged, "listening on ")["level"] == "INFO"

    failed = by_message(logged, "probe/ping started failing: error: ")
    skipped = by_message(logged, "suite orders skipped: ")
    assert failed["level"] == "ERROR"
    assert skipped["level"] == "WARNING"
    assert skipped["reason"] == "dependency 'probe' failed"
    for record in (failed, skipped):  # the run ids the API shows
        assert len(record["run_id"]) == 12
        assert f'"{record["run_id"]}"' in runs


def test_many_suites_are_counted_at_info_and_named_at_debug(
    tmp_path: Path, caplog_loguru: pytest.LogCaptureFixture
) -> None:
    source = "from synthetic_exporter import Suite, T\n" + "".join(
        f"s{i} = Suite('s{i}')\n@s{i}.test\nasync def t{i}(t: T) -> None:\n    pass\n"
        for i in range(12)
    )
    checks = write_checks(tmp_path / "checks", {"many.py": source})
    settings = Settings(
        checks_path=checks,
        state_dir=tmp_path / "state",
        targets={"api": TargetSettings(base_url="https://u:secret-pw@api.example.com")},
    )
    sys.path.insert(0, str(checks))
    try:
        log_startup(settings, load(checks))
    finally:
        sys.path.remove(str(checks))
    messages = {r.getMessage(): r.levelname for r in caplog_loguru.records}
    assert messages[f"synthetic-exporter {__version__} starting: 12 suites, 12 tests from {checks}"]
    assert not any(m.startswith("suites: ") for m in messages)  # too many for one line
    assert messages["suite s11: t11"] == "DEBUG"
    assert messages["target api: https://u:***@api.example.com"] == "INFO"
    assert messages["environment default, no shard, state in " + str(tmp_path / "state")]
