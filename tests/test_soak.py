"""scripts/soak.py, small: kill -9 the real agent mid-create three times, SIGTERM it once, start
it cleanly; nothing the checks created is left on the demo API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_three_kills_and_a_sigterm_leak_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--kills", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["created"] > 0
    assert figures["leaked"] == 0, figures
