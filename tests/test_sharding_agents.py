"""N agents with shards i/N run every suite exactly once between them, dependencies together."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_agent, stop_process, wait_for_health, write_checks

pytestmark = pytest.mark.slow
SHARDS = 3

CHECKS = """
import os
from synthetic_exporter import Suite, T

def _suite(name: str, *deps: str) -> Suite:
    suite = Suite(name, depends_on=list(deps))

    @suite.test
    def record(t: T) -> None:
        with open(os.environ["RUNS_FILE"], "a") as runs:
            runs.write(f"{t.suite} {os.environ['SYNTHETIC_SHARD']}\\n")

    return suite

signup = _suite("signup")
invoices = _suite("invoices", "signup")
payments = _suite("payments", "invoices")
search = _suite("search")
reports = _suite("reports", "search")
cdn = _suite("cdn")
storage = _suite("storage")
login = _suite("login")
profile = _suite("profile", "login")
"""
GROUPS = [
    {"signup", "invoices", "payments"},
    {"search", "reports"},
    {"cdn"},
    {"storage"},
    {"login", "profile"},
]


def test_shards_split_suites_exactly_once_keeping_dependencies(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"many.py": CHECKS})
    runs_file = tmp_path / "runs.txt"
    agents: list[Server] = []
    try:
        for i in range(SHARDS):
            agents.append(
                start_agent(
                    checks,
                    tmp_path / f"state{i}",
                    None,
                    SYNTHETIC_SHARD=f"{i}/{SHARDS}",
                    SYNTHETIC_INTERVAL="1h",
                    RUNS_FILE=str(runs_file),
                )
            )
        owned: list[set[str]] = []
        for agent in agents:
            body = wait_for_health(agent.url, 200)
            owned.append(set(body["suites"]))
            metrics = httpx.get(f"{agent.url}/metrics").text
            assert f'shard="{len(owned) - 1}"' in metrics
    finally:
        for agent in agents:
            stop_process(agent.process)
    all_suites = set().union(*GROUPS)
    assert sorted(n for shard in owned for n in shard) == sorted(all_suites)
    assert sum(1 for shard in owned if shard) >= 2
    for group in GROUPS:
        assert sum(1 for shard in owned if group <= shard) == 1
    runs = [line.split() for line in runs_file.read_text().splitlines()]
    assert sorted(suite for suite, _ in runs) == sorted(all_suites)
    for suite, shard in runs:
        assert suite in owned[int(shard.split("/")[0])]
    assert os.stat(runs_file).st_size > 0
