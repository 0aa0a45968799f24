"""scripts/browser_soak.py, small: a minute of browser checks in a row on one engine leaves no
more contexts, pages or processes open, and memory within a bound."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
MIB = 2**20
BROWSER_PSS_GROWTH = 64 * MIB
"""Allowed growth of the Chromium tree's summed PSS after the warm-up (measured: see
docs/writing-checks.md, "Browser checks")."""
AGENT_RSS_GROWTH = 16 * MIB


def test_a_minute_of_browser_checks_leaks_no_context_page_process_or_memory() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "browser_soak.py"),
            "--checks",
            "300",
            "--seconds",
            "60",
            "--warmup",
            "20",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["checks"] >= 40, figures
    assert figures["outcomes"] == {"passed": figures["checks"]}, figures["messages"]
    warm, end, growth = figures["after_warmup"], figures["end"], figures["growth"]
    assert end["contexts"] == 0
    assert end["pages"] <= 1  # the browser's own blank page
    assert end["restarts"] == 0
    assert end["processes"] <= warm["processes"] + 1  # a renderer may be on its way out
    assert growth["browser_pss"] <= BROWSER_PSS_GROWTH, figures
    assert growth["agent_rss"] <= AGENT_RSS_GROWTH, figures
