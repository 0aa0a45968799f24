"""Check code cannot stop the agent: rogue and blocking checks against a real ``serve`` process.

Real processes, real signals, real sockets: the agent runs as a subprocess on 127.0.0.1, with
check files that raise every kind of ``BaseException`` in every place check code runs, block
the event loop, and a control suite whose cadence must hold.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, Server, start_agent, stop_process

ROGUE_CHECKS = ROOT / "tests" / "rogue_checks"


def checks_of(directory: Path, *names: str) -> Path:
    """Copy some of the rogue check files into ``directory``; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(ROGUE_CHECKS / name, directory / name)
    return directory


pytestmark = pytest.mark.slow


def get_json(agent: Server, path: str) -> Any:
    return httpx.get(f"{agent.url}{path}", timeout=5).json()


def control_runs(agent: Server) -> list[float]:
    runs = get_json(agent, "/api/v1/runs?suite=control")["runs"]
    return sorted(r["started_at"] for r in runs)


def wait_until(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not true within {seconds}s")


def test_rogue_check_code_is_reported_and_the_agent_runs_on(tmp_path: Path) -> None:
    checks = checks_of(tmp_path / "checks", "rogue.py", "control.py", "broken.py")
    agent = start_agent(checks, tmp_path / "state", "http://127.0.0.1:9")
    try:
        wait_until(lambda: len(control_runs(agent)) >= 5, 20)
        assert agent.process.poll() is None
        assert httpx.get(f"{agent.url}/-/healthy").status_code == 200

        suites = {s["suite"]: s for s in get_json(agent, "/api/v1/results")["suites"]}
        tests = {t["name"]: t for t in suites["rogue"]["tests"]}
        assert {n: (t["outcome"], t["message"]) for n, t in tests.items()} == {
            "interrupts": ("error", "KeyboardInterrupt"),
            "exits": ("error", "SystemExit: 4"),
            "cancels": ("error", "CancelledError"),
            "closes": ("error", "GeneratorExit"),
            "in_subtest/sub": ("error", "KeyboardInterrupt"),
            "in_subtest": ("failed", "subtest 'sub' error: KeyboardInterrupt"),
            "in_cleanup_and_janitor": ("passed", ""),
        }
        cleanup = tests["in_cleanup_and_janitor"]["cleanup_failures"]
        assert cleanup == [{"name": "leave", "message": "SystemExit: 5"}]
        janitors = suites["rogue"]["janitor_failures"]
        assert janitors[0]["message"] == "SystemExit: 3"

        # The control suite kept its 1 s cadence: every run started within 1 s of its slot.
        runs = get_json(agent, "/api/v1/runs?suite=control")["runs"]
        assert all(r["outcome"] == "passed" for r in runs), runs
        assert max(r["lag_seconds"] for r in runs) < 1.0, runs
        metrics = httpx.get(f"{agent.url}/metrics").text
        assert sample(metrics, "synthetic_exporter_load_errors") == 1
        # Each rogue run: one cleanup and one janitor failure.
        assert sample(metrics, "synthetic_cleanup_failures_total", suite="rogue") >= 2
    finally:
        stop_process(agent.process)

    # A janitor that exits is retried at the next start-up, never a crash loop.
    again = start_agent(checks, tmp_path / "state", "http://127.0.0.1:9")
    try:
        wait_until(lambda: len(control_runs(again)) >= 2, 20)
        assert again.process.poll() is None
        assert httpx.get(f"{again.url}/-/healthy").status_code == 200
    finally:
        stop_process(again.process)


def test_a_blocking_check_is_timed_out_located_and_counted(tmp_path: Path) -> None:
    checks = checks_of(tmp_path / "checks", "blocking.py", "control.py")
    agent = start_agent(checks, tmp_path / "state", None)
    try:
        wait_until(lambda: "blocking" in json.dumps(get_json(agent, "/api/v1/results")), 20)
        suites = {s["suite"]: s for s in get_json(agent, "/api/v1/results")["suites"]}
        (test,) = suites["blocking"]["tests"]
        assert test["outcome"] == "timeout"
        assert test["message"].startswith("test timed out after 1s (it ran 1.5")
        blocked_total = "synthetic_exporter_event_loop_blocked_seconds_total"
        wait_until(lambda: sample(metrics_text(agent), blocked_total) > 0, 10)
        blocked = sample(metrics_text(agent), blocked_total)
        assert 1.3 <= blocked <= 10
        assert httpx.get(f"{agent.url}/-/healthy").status_code == 200
    finally:
        agent.process.send_signal(signal.SIGTERM)
        agent.process.wait(timeout=20)
    assert agent.process.returncode == 0
    time.sleep(0.2)  # the reader thread drains the pipe
    output = agent.lines_so_far()
    located = [
        json.loads(line)
        for line in output
        if line.startswith("{") and "event loop was blocked" in line
    ]
    assert located, output
    assert not [line for line in output if "CRITICAL" in line], output
    assert "blocking.py:" in located[0]["location"]
    assert located[0]["location"].endswith("in holds_the_loop")


def sample(exposition: str, name: str, **labels: str) -> float:
    """Return the value of the first sample called ``name`` (with ``labels``) in an exposition."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels.items() >= labels.items():
                return float(found.value)
    raise AssertionError(f"no sample {name} {labels}")


def metrics_text(agent: Server) -> str:
    return httpx.get(f"{agent.url}/metrics", timeout=5).text
