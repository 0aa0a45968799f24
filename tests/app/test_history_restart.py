"""Issue 15's acceptance: history, uptime and "failing since" survive a restart of the agent."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_agent, stop_process, write_checks

pytestmark = pytest.mark.slow

CHECKS = {
    "shop.py": """
        from synthetic_exporter import Suite, T

        shop = Suite("shop", interval="1s")


        @shop.test
        def checkout(t: T) -> None:
            assert 502 == 200, "checkout answered 502"


        @shop.test
        def browse(t: T) -> None:
            pass
    """
}


def _runs(agent: str) -> list[dict[str, str]]:
    body = httpx.get(f"{agent}/api/v1/runs", params={"suite": "shop", "limit": 500}, timeout=5)
    runs: list[dict[str, str]] = body.json()["runs"]
    return runs


def _wait_for_runs(agent: str, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 30
    runs = _runs(agent)
    while time.monotonic() < deadline and len(runs) < count:
        time.sleep(0.2)
        runs = _runs(agent)
    assert len(runs) >= count, runs
    return runs


def _failing_since(page: str) -> str:
    """Return the ISO time of the first row's "failing since"."""
    found = re.search(r'<dd class="since"><time datetime="([^"]+)"', page)
    assert found, "no failing-since on the page"
    return found.group(1)


def test_history_uptime_and_failing_since_survive_a_restart(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", CHECKS)
    state = tmp_path / "state"
    first = start_agent(checks, state, None)
    try:
        before = _wait_for_runs(first.url, 3)
        page_before = httpx.get(first.url, timeout=5).text
    finally:
        stop_process(first.process)
    since_before = _failing_since(page_before)
    ids_before = {run["run_id"] for run in before}

    second = start_agent(checks, state, None)
    try:
        after = _wait_for_runs(second.url, len(before) + 1)
        page = httpx.get(second.url, timeout=5).text
        test_page = httpx.get(f"{second.url}/tests/shop/checkout", timeout=5).text
        old_run = httpx.get(f"{second.url}/runs/{sorted(ids_before)[0]}", timeout=5)
    finally:
        stop_process(second.process)
    assert ids_before <= {run["run_id"] for run in after}, "runs from before the restart are kept"
    assert _failing_since(page) == since_before
    assert "checkout answered 502" in page
    assert all(f"/runs/{run_id}" in test_page for run_id in ids_before), "bars keep old runs"
    assert "0%" in test_page  # checkout's uptime: every kept run failed
    assert old_run.status_code == 200
    assert "checkout answered 502" in old_run.text
