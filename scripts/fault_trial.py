"""Misbehaving check code against a real agent: what is reported, and does the agent keep time?

Runs ``synthetic-exporter serve`` on 127.0.0.1 with the rogue check files of
``tests/rogue_checks`` (every ``BaseException`` in every place check code runs, a check file
that exits at import, a test that blocks the event loop) beside a control suite on a 1 s
interval, for a bounded time, then prints what the agent reported and how late the control
suite's runs started. ``make faults`` runs it; docs/reliability.md records a run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from servers import start, stop

ROOT = Path(__file__).resolve().parent.parent
ROGUE_CHECKS = ROOT / "tests" / "rogue_checks"


def start_agent(checks: Path, state: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the agent on a free port (its log beside the state dir); return it and its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    env.update(
        SYNTHETIC_LISTEN="127.0.0.1:0",
        SYNTHETIC_STATE_DIR=str(state),
        SYNTHETIC_LOG_FORMAT="json",
        SYNTHETIC_TARGETS__DEFAULT__BASE_URL="http://127.0.0.1:9",
    )
    args = [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "serve"]
    return start(args, state.parent / "agent.log", env)


def sample(exposition: str, name: str) -> float:
    """Return the first sample called ``name``."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name:
                return float(found.value)
    return float("nan")


def trial(files: list[str], seconds: float) -> dict[str, Any]:
    """Run the agent on ``files`` for ``seconds``; return what it reported."""
    with tempfile.TemporaryDirectory() as tmp:
        checks = Path(tmp) / "checks"
        checks.mkdir()
        for name in files:
            shutil.copy(ROGUE_CHECKS / name, checks / name)
        process, url = start_agent(checks, Path(tmp) / "state")
        try:
            time.sleep(seconds)
            alive = process.poll() is None
            healthy = httpx.get(f"{url}/-/healthy", timeout=5).status_code
            runs = httpx.get(f"{url}/api/v1/runs?suite=control", timeout=5).json()["runs"]
            results = httpx.get(f"{url}/api/v1/results", timeout=5).json()["suites"]
            metrics = httpx.get(f"{url}/metrics", timeout=5).text
        finally:
            stop(process, wait=30)
    lags = sorted(r["lag_seconds"] for r in runs)
    return {
        "alive": alive,
        "healthy": healthy,
        "exit": process.returncode,
        "control_runs": len(runs),
        "control_lag_max": lags[-1] if lags else float("nan"),
        "control_lag_median": statistics.median(lags) if lags else float("nan"),
        "outcomes": {
            f"{s['suite']}/{t['name']}": f"{t['outcome']}: {t['message']}"
            for s in results
            if s["suite"] != "control"
            for t in s["tests"]
        },
        "blocked_seconds": sample(metrics, "synthetic_exporter_event_loop_blocked_seconds_total"),
        "load_errors": sample(metrics, "synthetic_exporter_load_errors"),
    }


def report(name: str, found: dict[str, Any]) -> None:
    """Print one trial."""
    print(f"## {name}")
    print(
        f"agent alive: {found['alive']}, /-/healthy {found['healthy']}, exit on SIGTERM"
        f" {found['exit']}, load errors {found['load_errors']:g}"
    )
    median, most = found["control_lag_median"] * 1000, found["control_lag_max"] * 1000
    print(
        f"control suite: {found['control_runs']} runs,"
        f" start lag median {median:.1f} ms, max {most:.1f} ms"
    )
    print(f"event loop blocked: {found['blocked_seconds']:.2f} s in all")
    for test, outcome in sorted(found["outcomes"].items()):
        print(f"  {test}: {outcome}")


def main() -> None:
    """Run both trials and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30, help="length of each trial")
    args = parser.parse_args()
    report(
        "rogue check code (every BaseException, a file exiting at import)",
        trial(["rogue.py", "broken.py", "control.py"], args.seconds),
    )
    report(
        "a test blocking the event loop 1.5 s every 4 s",
        trial(["blocking.py", "control.py"], args.seconds),
    )


if __name__ == "__main__":
    main()
