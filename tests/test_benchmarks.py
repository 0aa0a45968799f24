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
    env.pop("BENCH_HTTPX2_PYTHON", None)  # as on a fresh machine
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
    # No httpx2 interpreter given (a fresh machine): its rows are skipped with a note.
    assert "whatif-httpx2" not in top_systems
    assert "httpx2 / httpcore2" in sections["## Machine"]
    assert "skipped: no --httpx2-python interpreter given" in sections["## Throughput"]
    machine = dict(row[:2] for row in _table_rows(sections["## Machine"]))
    assert machine["cores"].isdigit()
    assert re.match(r"\d+\.\d+", machine["blackbox_exporter"])
    assert "make bench" in sections["## Reproduce"]


@pytest.mark.slow
async def test_httpx2_rows_are_skipped_with_a_reason_without_a_usable_interpreter(
    tmp_path: Path,
) -> None:
    from benchmarks.httpx2 import find_httpx2

    assert (await find_httpx2(None)).python is None
    missing = await find_httpx2(str(tmp_path / "no-python"))
    assert missing.python is None
    assert missing.note.startswith("skipped: cannot run")
    without = await find_httpx2(sys.executable)  # the project's venv has no httpx2
    assert without.python is None
    assert "ModuleNotFoundError" in without.note


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_stacks_quick_mode_compares_the_http_stacks() -> None:
    """``python -m benchmarks.stacks --quick`` runs end to end; with httpx2 (when a virtualenv
    with it is named in BENCH_HTTPX2_PYTHON) its rows are there too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.stacks", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    systems = {row[1] for row in _table_rows(done.stdout) if len(row) > 1}
    systems |= {row[0] for row in _table_rows(done.stdout)}
    assert {"agent-pooled", "whatif-httpcore-pooled", "whatif-httpcore"} <= systems
    if env.get("BENCH_HTTPX2_PYTHON"):
        assert {"whatif-httpx2", "whatif-httpx2-pooled"} <= systems
    else:
        assert "httpx2: skipped" in done.stdout
