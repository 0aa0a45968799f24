"""The benchmark harness runs end to end in quick mode and reports every section with figures.

Quick mode proves the harness works (target, blackbox_exporter, agent, every measurement,
report); its figures are meaningless. The real figures are in docs/performance.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import browser
from benchmarks.blackbox import BINARY
from benchmarks.report import BEGIN, END, SECTIONS
from tests.conftest import ROOT

# Quick mode takes 40 to 60 s on an idle 2-core machine, 80 s with the machine busy: the bound
# catches a hang or a section that lost its tiny counts, not a slow machine.
QUICK_LIMIT_SECONDS = 150
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
@pytest.mark.timeout(QUICK_LIMIT_SECONDS + 20)
def test_quick_benchmark_reports_every_section_with_figures(tmp_path: Path) -> None:
    assert Path(BINARY).exists(), "blackbox_exporter is not installed: run `make system-deps`"
    output = tmp_path / "performance.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    env.pop("BENCH_HTTPX2_PYTHON", None)  # as on a fresh machine
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=QUICK_LIMIT_SECONDS,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-4000:]
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
    assert len(goals) == 12
    assert sum(1 for goal in goals if goal[0].startswith("HTTPS, fresh connection")) == 3
    assert any(goal[0].startswith("series for a one-request test") for goal in goals)
    assert any(goal[0].startswith("memory within budget") for goal in goals)
    for goal, measured, met, change in goals:
        assert NUMBER.search(measured), goal
        assert "n/a" not in measured, goal
        assert met in ("**yes**", "**no**"), goal
        assert change, goal
    accuracy_systems = {row[1] for row in _table_rows(sections["## Accuracy"]) if len(row) > 1}
    assert {"agent-fresh", "agent-pooled", "whatif-httpcore-pooled"} <= accuracy_systems
    assert "reference-raw-asyncio" in accuracy_systems
    assert {"blackbox-https", "agent-fresh-https"} <= accuracy_systems
    throughput = _table_rows(sections["## Throughput"])
    top = max(int(row[0]) for row in throughput)
    top_systems = {row[1] for row in throughput if int(row[0]) == top}
    assert {"agent-pooled-2-shards", "whatif-httpcore", "whatif-engine-only"} <= top_systems
    assert not {row[1] for row in throughput if int(row[0]) != top} - {
        "blackbox",
        "agent-pooled",
        "agent-fresh",
        "blackbox-https",
        "agent-fresh-https",
    }, "deployment and what-if rows: top concurrency only"
    assert {"blackbox-https", "agent-fresh-https"} <= top_systems
    series = {row[0]: row[1:] for row in _table_rows(sections["## Series"])}
    assert set(series) >= {
        "agent, one request",
        "agent, five requests",
        "agent, one HTTPS request",
        "blackbox, one probe (`http_2xx`)",
        "blackbox, one probe (`http_2xx_tls`)",
    }
    assert float(series["blackbox, one probe (`http_2xx`)"][0]) > 0
    assert float(series["agent, one request"][0]) > 0
    assert "this run / budget" in sections["## Memory"]
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


EXPOSITION = b"""\
# HELP synthetic_exporter_build_info Build
# TYPE synthetic_exporter_build_info gauge
synthetic_exporter_build_info{version="1"} 1.0
process_open_fds 7.0
# HELP synthetic_test_success 1 if passed
# TYPE synthetic_test_success gauge
synthetic_test_success{suite="a",test="t"} 1.0
# HELP synthetic_test_duration_seconds Duration
# TYPE synthetic_test_duration_seconds histogram
synthetic_test_duration_seconds_bucket{le="+Inf",suite="a",test="t"} 1.0
synthetic_test_duration_seconds_count{suite="a",test="t"} 1.0
"""
MORE = b"""\
synthetic_test_success{suite="b",test="t"} 1.0
synthetic_test_duration_seconds_bucket{le="+Inf",suite="b",test="t"} 1.0
synthetic_test_duration_seconds_count{suite="b",test="t"} 1.0
synthetic_test_success{suite="c",test="t"} 1.0
synthetic_test_duration_seconds_bucket{le="+Inf",suite="c",test="t"} 1.0
synthetic_test_duration_seconds_count{suite="c",test="t"} 1.0
synthetic_exporter_build_info{version="2"} 1.0
"""


def test_series_per_check_is_the_difference_without_the_agents_own_families() -> None:
    from benchmarks.series import by_family, per_check, samples, without_own

    assert samples(EXPOSITION) == 5
    kept = without_own(EXPOSITION)
    assert b"synthetic_exporter_" not in kept
    assert b"process_" not in kept
    assert samples(kept) == 3
    assert b"# TYPE synthetic_test_duration_seconds histogram" in kept
    each = per_check(EXPOSITION, EXPOSITION + MORE, 2)
    assert each.series == 3  # the extra build_info sample is the agent's own: not counted
    assert each.bytes == len(MORE.split(b"synthetic_exporter_")[0]) / 2
    assert each.gzip_bytes > 0
    assert by_family(EXPOSITION, EXPOSITION + MORE, 2) == {
        "synthetic_test_duration_seconds": 2,
        "synthetic_test_success": 1,
    }


def test_memory_budget_fails_only_beyond_its_tolerance() -> None:
    from benchmarks.budget import KIB, MIB, Budget, check

    budget = Budget(idle_mib=60.0, per_suite_kib=50.0, per_1000_series_mib=0.5)
    within = check(66 * MIB, 55 * KIB, 0.55 * MIB / 1000, budget)
    assert [line.within for line in within] == [True, True, True]
    over = check(66.1 * MIB, 40 * KIB, 0.56 * MIB / 1000, budget)
    assert [line.within for line in over] == [False, True, False]
    assert over[0].ratio > 1.1


def test_memory_slope_separates_suites_from_series() -> None:
    from benchmarks.memory import (
        DETAILED_LABEL,
        IDLE_LABEL,
        AgentMemory,
        Memory,
        idle_agent,
        slope,
    )

    memory = Memory(
        agents=[
            AgentMemory(IDLE_LABEL, 0, 20, 50, 60, 0.1),
            AgentMemory("100 suites", 100, 1_520, 60, 70, 0.1),
            AgentMemory("1,000 suites", 1000, 15_020, 100, 160, 0.1),
            AgentMemory(f"1,000 suites, {DETAILED_LABEL}", 1000, 116_020, 150, 261, 0.1),
        ]
    )
    assert idle_agent(memory).rss_after_scrapes == 60
    per_suite, per_series = slope(memory)
    assert per_series == 101 / 101_000  # the same suites, more series
    assert per_suite == (90 - per_series * 13_500) / 900


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_target_serves_https_from_the_trustme_ca_and_shares_held_times(
    tmp_path: Path,
) -> None:
    import ssl

    import httpx

    from benchmarks import procs
    from benchmarks.lab import child_env
    from benchmarks.tls import write_tls_files

    tls = write_tls_files(tmp_path / "tls")
    tls_port = procs.free_port()
    args = ["--port", "0", "--tls-port", str(tls_port)]
    args += ["--tls-chain", str(tls.chain), "--tls-key", str(tls.key)]
    target = await procs.start(
        "target",
        [sys.executable, "-m", "benchmarks.target", *args],
        tmp_path / "target.log",
        marker="listening on ",
        env=child_env(),
    )
    try:
        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=tls.ca), timeout=10
        ) as client:
            response = await client.get(f"https://127.0.0.1:{tls_port}/delay/5/k1")
            assert response.status_code == 200
            assert response.text == "ok"
            held = (await client.get(f"{target.url}/held?ids=k1")).json()
        assert 0.004 <= held["k1"] < 1.0
        async with httpx.AsyncClient(timeout=10) as untrusting:  # not the benchmark's CA
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(f"https://127.0.0.1:{tls_port}/delay/0")
    finally:
        await procs.stop(target)


def test_browser_cell_figures_per_check_and_per_core() -> None:
    cell = browser.Cell(
        concurrency=1,
        seconds=10.0,
        checks=20,
        failed=0,
        cpu_seconds=15.0,
        idle_pss_bytes=400 << 20,
        peak_pss_bytes=600 << 20,
        peak_processes=13,
    )
    assert cell.cpu_ms_per_check == 750
    assert cell.per_core_minute == 80
    assert cell.cores == 1.5


async def test_browser_rows_are_skipped_with_a_reason_without_chromium(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("benchmarks.browser.shutil.which", lambda name: None)
    bench = await browser.measure_browser(quick=True)
    assert bench.cells == []
    assert bench.skipped == "Debian's chromium is not installed (make browser-deps)"
