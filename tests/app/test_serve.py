"""The agent as a subprocess (``serve``) against the demo API, scraped by a real Prometheus."""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    ROOT,
    fresh_python,
    start_agent,
    start_demo,
    stop_process,
    wait_for_health,
    write_checks,
)
from tests.prometheus import require, start_prometheus

pytestmark = pytest.mark.slow
TOKEN = "test-admin-token-123"


def test_agent_end_to_end_with_prometheus(tmp_path: Path, fresh_demo_api: str) -> None:
    agent = start_agent(
        ROOT / "checks",
        tmp_path / "state",
        fresh_demo_api,
        SYNTHETIC_INTERVAL="1s",
        SYNTHETIC_ADMIN_TOKEN=TOKEN,
        SYNTHETIC_ENVIRONMENT="ci",
    )
    host_port = agent.url.removeprefix("http://")
    prometheus = start_prometheus(tmp_path / "prometheus", [host_port])
    try:
        assert httpx.get(f"{agent.url}/-/healthy").status_code == 200
        assert httpx.get(f"{agent.url}/-/ready").status_code == 200
        body = wait_for_health(agent.url, 200)
        assert body["status"] == "pass"

        # Prometheus reads back what the agent measured.
        ok = prometheus.wait_for(
            'synthetic_test_success{suite="invoices",test="void_invoice"} == 1'
        )
        assert ok[0]["metric"]["environment"] == "ci"
        # cdn and storage need targets this agent does not have: they skip, with the reason.
        tests = prometheus.query('synthetic_test_success{suite=~"signup|invoices|payments"}')
        assert {r["metric"]["test"] for r in tests} >= {
            "create_customer",
            "confirm_email",
            "log_in",
            "issue_invoice",
            "void_invoice",
        }
        assert all(r["value"][1] == "1" for r in tests)
        skipped = prometheus.query('synthetic_suite_result{suite="cdn",result="skipped"} == 1')
        assert len(skipped) == 1
        ages = prometheus.query("time() - synthetic_test_last_run_timestamp_seconds")
        assert ages
        assert all(0 <= float(r["value"][1]) < 30 for r in ages)

        # A fault turns /healthz red, naming the failed test; removing it turns it green.
        fault = {"path": "/invoices", "method": "POST", "status": 503}
        assert httpx.post(f"{fresh_demo_api}/admin/faults", json=fault).status_code == 201
        # payments also posts to /invoices: it may fail first, until the next run of invoices
        # fails and payments is skipped because of it; one failure is then named, and why.
        body = wait_for_health_body(
            agent.url, lambda b: [f["test"] for f in b["failed"]] == ["invoices/issue_invoice"]
        )
        assert body["status"] == "fail"
        failed = body["failed"]
        assert {"suite": "payments", "reason": "dependency 'invoices' failed"} in body["skipped"]
        assert "assert 503 == 201" in failed[0]["message"]
        prometheus.wait_for('synthetic_test_success{test="issue_invoice"} == 0')
        assert httpx.delete(f"{fresh_demo_api}/admin/faults").status_code == 204
        wait_for_health(agent.url, 200)

        # promtool accepts the live exposition.
        exposition = httpx.get(f"{agent.url}/metrics").text
        lint = subprocess.run(
            [require("promtool"), "check", "metrics"],
            input=exposition,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (lint.returncode, lint.stdout.strip(), lint.stderr.strip()) == (0, "", "")
        openmetrics = httpx.get(
            f"{agent.url}/metrics", headers={"Accept": "application/openmetrics-text"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")

        # POST /api/v1/run needs the token.
        assert httpx.post(f"{agent.url}/api/v1/run").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{agent.url}/api/v1/run", headers=wrong).status_code == 401
        run = httpx.post(
            f"{agent.url}/api/v1/run",
            params={"suite": "signup"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert run.status_code == 200
        data = run.json()
        assert [s["suite"] for s in data["suites"]] + data["already_running"] == ["signup"]

        results = httpx.get(f"{agent.url}/api/v1/results").json()
        assert {s["suite"] for s in results["suites"]} == {
            "signup",
            "invoices",
            "payments",
            "cdn",
            "storage",
            "browser_dashboard",
        }
        runs = httpx.get(f"{agent.url}/api/v1/runs", params={"limit": 3}).json()["runs"]
        assert len(runs) == 3
        page = httpx.get(f"{agent.url}/")
        assert page.status_code == 200
        assert "invoices/issue_invoice" in page.text
    finally:
        prometheus.stop()
        stop_process(agent.process)
    assert agent.process.returncode == 0


BULK = """
from synthetic_exporter import Suite, T

bulk = Suite("bulk")

def _make(i: int) -> None:
    async def test(t: T) -> None:
        pass

    test.__name__ = f"case_{i:03d}"
    bulk.test(test)

for _i in range(400):
    _make(_i)

latency = Suite("latency")

@latency.test
async def fetch_50ms(t: T) -> None:
    r = await t.http.get("/delay/50")
    assert r.status_code == 200
"""


def wait_for_health_body(
    agent: str, predicate: Callable[[dict[str, Any]], bool], seconds: float = 30
) -> dict[str, Any]:
    """Poll /healthz (bounded) until its body satisfies ``predicate``; return the body."""
    deadline = time.monotonic() + seconds
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{agent}/healthz", timeout=5).json()
        if predicate(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"/healthz never matched within {seconds}s: {body}")


def test_scrapes_do_not_inflate_measured_latency(tmp_path: Path, fresh_demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"bulk.py": BULK})
    # The detailed families on: a large exposition, every scrape a heavy render.
    agent = start_agent(
        checks,
        tmp_path / "state",
        fresh_demo_api,
        SYNTHETIC_INTERVAL="0.5s",
        SYNTHETIC_METRICS_DURATION_HISTOGRAMS="true",
        SYNTHETIC_METRICS_RUN_COUNTERS="true",
    )
    stop = threading.Event()
    scrapes: list[int] = []

    def scrape_forever() -> None:
        with httpx.Client() as client:
            while not stop.is_set() and len(scrapes) < 2000:
                scrapes.append(len(client.get(f"{agent.url}/metrics").content))

    try:
        wait_for_health(agent.url, 200)
        series = httpx.get(f"{agent.url}/metrics").text.count("\nsynthetic_")
        assert series >= 10_000
        scraper = threading.Thread(target=scrape_forever)
        scraper.start()
        time.sleep(6)
        stop.set()
        scraper.join(timeout=30)
        runs = httpx.get(
            f"{agent.url}/api/v1/runs", params={"suite": "latency", "limit": 10}
        ).json()["runs"]
        during = [r["duration_seconds"] for r in runs[:8]]
        results = {s["suite"]: s for s in httpx.get(f"{agent.url}/api/v1/results").json()["suites"]}
        measured = results["latency"]["tests"][0]["duration_seconds"]
    finally:
        stop.set()
        stop_process(agent.process)
    assert len(scrapes) >= 10
    assert len(during) >= 5
    # Suite durations include the janitor pass; the test's own figure is the latency.
    assert 0.05 <= measured < 0.09
    assert statistics.median(during) < 0.1


def test_demo_command_prints_urls_and_serves_within_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    demo = start_demo(tmp_path / "state", interval="2s")
    try:
        assert httpx.get(f"{demo.url}/metrics").status_code == 200
        body = wait_for_health(demo.url, 200, seconds=20)
        assert body["suites"] == dict.fromkeys(
            ["browser_dashboard", "cdn", "invoices", "payments", "signup", "storage"], "pass"
        )
        assert time.monotonic() - started < 20
    finally:
        stop_process(demo.process)


async def test_pending_cleanups_gauge_follows_failed_janitors(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from synthetic_exporter import JanitorContext, Resource, Suite, T
    from synthetic_exporter.app.serve import PendingCleanups, counted_in
    from synthetic_exporter.core.settings import Settings
    from synthetic_exporter.engine.coordinator import Coordinator
    from synthetic_exporter.engine.wiring import Fanout, open_engine
    from synthetic_exporter.exporter.metrics import Metrics

    suite = Suite("leaky")
    gone = {"ok": False}

    @suite.janitor("thing")
    def delete_thing(j: JanitorContext, r: Resource) -> None:
        assert gone["ok"], "backend refused the delete"

    @suite.test
    async def makes_a_thing(t: T) -> None:
        t.track("thing", "t-1")

    registry = CollectorRegistry()
    metrics = Metrics(registry, {"environment": "test"}, "0")
    settings = Settings(state_dir=tmp_path / "state")
    async with open_engine(settings, {"leaky": suite}, counted_in(metrics)) as engine:
        pending = PendingCleanups(engine.ledger, metrics, ["leaky"])
        coordinator = Coordinator(
            engine=engine,
            suites={"leaky": suite},
            listener=Fanout([metrics, pending]),
            concurrency=1,
        )
        await coordinator.run_batch(["leaky"])
        labels = {"environment": "test", "suite": "leaky"}
        assert registry.get_sample_value("synthetic_cleanup_pending", labels) == 1
        assert registry.get_sample_value("synthetic_cleanup_failures_total", labels) == 1
        await engine.sweeper.clean(engine.ledger.due(now=float("inf")))  # a retry that fails
        assert registry.get_sample_value("synthetic_cleanup_failures_total", labels) == 2
        gone["ok"] = True
        await engine.sweeper.clean(engine.ledger.due(now=float("inf")))  # the retry, now
        pending.refresh()
        assert registry.get_sample_value("synthetic_cleanup_pending", labels) == 0
        assert registry.get_sample_value("synthetic_cleanup_failures_total", labels) == 2


def test_tune_process_freezes_settles_the_collector_and_switch_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``tune_process`` freezes what is loaded, raises the collector's young threshold,
    shortens the GIL switch interval (restored afterwards: this is the test process) and pins
    the mmap threshold (not here: it cannot be undone; see the test below)."""
    import gc
    import sys

    from synthetic_exporter.app import serve
    from synthetic_exporter.app.serve import GC_THRESHOLD, SWITCH_INTERVAL_SECONDS, tune_process

    pinned: list[bool] = []

    def pin() -> bool:
        pinned.append(True)
        return True

    monkeypatch.setattr(serve, "fix_mmap_threshold", pin)
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        tune_process()
        assert pinned == [True]
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLD != threshold
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_SECONDS)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)


def test_fixed_mmap_threshold_gives_freed_buffers_back() -> None:
    """Under glibc's moving threshold a large buffer freed once (an exposition, its gzip) makes
    later ones come from the heap, where their memory stays resident after they are freed; with
    the threshold pinned it goes back to the system."""
    probe = """
import re, sys
from synthetic_exporter.app.serve import fix_mmap_threshold
pinned = fix_mmap_threshold() if sys.argv[1] == "pinned" else True
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024
large = bytearray(16 * 1024 * 1024)
del large  # freed: glibc now serves blocks up to 16 MiB from its heap
before = rss()
buffer = bytearray(12 * 1024 * 1024)
del buffer
print(pinned, rss() - before)
"""
    grown = {}
    for mode in ("pinned", "default"):
        out = fresh_python(probe, mode)
        if out[0] != "True":
            pytest.skip("no glibc mallopt here")
        grown[mode] = int(out[1])
    assert grown["pinned"] < 2 < 10 < grown["default"], grown


def test_serving_loads_no_junit_writer() -> None:
    """The XML library behind ``run --junit`` stays out of the serving agent (0.5 MiB)."""
    probe = """
import sys
import synthetic_exporter.app.cli, synthetic_exporter.app.serve, synthetic_exporter.engine.loader
print("xml.etree.ElementTree" in sys.modules)
"""
    assert fresh_python(probe) == ["False"]
