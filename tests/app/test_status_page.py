"""The status page at /, rendered by a real headless Chromium."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, start_agent, stop_process, wait_for_health
from tests.prometheus import require

pytestmark = pytest.mark.slow


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with the flags this closed network needs."""
    return subprocess.run(
        [
            require("chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_status_page_shows_failures_first(tmp_path: Path, fresh_demo_api: str) -> None:
    agent = start_agent(
        ROOT / "checks",
        tmp_path / "state",
        fresh_demo_api,
        SYNTHETIC_INTERVAL="1s",
        SYNTHETIC_ENVIRONMENT="staging",
    )
    try:
        wait_for_health(agent.url, 200)
        fault = {"path": "/invoices", "method": "POST", "status": 503}
        assert httpx.post(f"{fresh_demo_api}/admin/faults", json=fault).status_code == 201
        wait_for_health(agent.url, 503)
        dom = chromium("--dump-dom", f"{agent.url}/", profile=tmp_path / "profile")
        shot = chromium(
            f"--screenshot={tmp_path / 'status.png'}",
            "--window-size=1200,900",
            f"{agent.url}/",
            profile=tmp_path / "profile2",
        )
    finally:
        stop_process(agent.process)
    assert dom.returncode == 0, dom.stderr
    html = dom.stdout
    assert "<title>synthetic-exporter: fail</title>" in html
    assert "(staging)" in html
    failing = html.index("invoices/issue_invoice")
    assert html.index("signup/create_customer") > failing  # failures listed first
    assert "assert 503 == 201" in html
    assert shot.returncode == 0, shot.stderr
    assert (tmp_path / "status.png").stat().st_size > 10_000
