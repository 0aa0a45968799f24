"""The benchmark harness runs end to end in quick mode and reports every section with figures.

Quick mode proves the harness works (target, blackbox_exporter, agent, every measurement,
report); its figures are meaningless. The real figures are in docs/performance.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.blackbox import BINARY
from benchmarks.report import BEGIN, END, SECTIONS
from tests.conftest import ROOT

QUICK_LIMIT_SECONDS = 60
# What-ifs that measured prototypes of what the agent now does; gone from the report.
REMOVED = ("whatif-raw-transport", "whatif-client-per-worker", "raw_transport", "prototype")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _sections(text: str) -> dict[str, str]:
    """Split the report into its ``## `` sections."""
    parts = re.split(r"^(## .+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _table_rows(body: str) -> list[list[str]]:
    """Return the data rows of every Markdown table in ``body``."""
    rows = []
    for line in body.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:] if rows else rows


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_quick_benchmark_reports_every_section_with_figures(tmp_path: Path) -> None:
    assert Path(BINARY).exists(), "blackbox_exporter is not installed: run `make system-deps`"
    output = tmp_path / "performance.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stderr[-4000:]
    assert elapsed < QUICK_LIMIT_SECONDS, f"quick mode took {elapsed:.0f} s"
    text = output.read_text()
    assert BEGIN in text
    assert END in text
    assert "## Goals" in done.stdout  # the report is printed too
    sections = _sections(text)
    assert set(SECTIONS) <= {f"{name}" for name in sections}
    for name in SECTIONS:
        if name in ("## Goals", "## Machine", "## Reproduce"):  # checked below
            continue
        rows = _table_rows(sections[name])
        assert rows, f"{name} has no table"
        figures = [cell for row in rows for cell in row[1:] if NUMBER.fullmatch(cell)]
        assert figures, f"{name} has no numeric figures"
    goals = _table_rows(sections["## Goals"])
    assert len(goals) == 8
    for goal, measured, met, change in goals:
        assert NUMBER.search(measured), goal
        assert "n/a" not in measured, goal
        assert met in ("**yes**", "**no**"), goal
        assert change, goal
    accuracy_systems = {row[1] for row in _table_rows(sections["## Accuracy"]) if len(row) > 1}
    assert {"agent-fresh", "agent-pooled", "whatif-httpcore-pooled"} <= accuracy_systems
    assert "reference-raw-asyncio" in accuracy_systems
    throughput = _table_rows(sections["## Throughput"])
    top = max(int(row[0]) for row in throughput)
    top_systems = {row[1] for row in throughput if int(row[0]) == top}
    assert {"agent-pooled-2-shards", "whatif-httpcore", "whatif-engine-only"} <= top_systems
    assert not {row[1] for row in throughput if int(row[0]) != top and row[1] != "blackbox"} - {
        "agent-pooled",
        "agent-fresh",
    }, "deployment and what-if rows: top concurrency only"
    for removed in REMOVED:
        assert removed not in text, removed
    machine = dict(row[:2] for row in _table_rows(sections["## Machine"]))
    assert machine["cores"].isdigit()
    assert re.match(r"\d+\.\d+", machine["blackbox_exporter"])
    assert "make bench" in sections["## Reproduce"]
