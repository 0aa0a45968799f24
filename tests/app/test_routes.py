"""The agent's routes, in-process: probes, HEAD, no-store, and the admin endpoint's guard."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from synthetic_exporter.app.routes import AgentState, create_app
from synthetic_exporter.core.results import Outcome, SuiteResult
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History
from synthetic_exporter.exporter.metrics import render_registry_off_loop
from synthetic_exporter.exporter.run_store import RunStore
from tests.conftest import start_agent, stop_process, write_checks
from tests.factories import make_suite


def state(token: str | None = None) -> AgentState:
    ran: list[list[str]] = []

    async def trigger(names: list[str]) -> list[SuiteResult]:
        ran.append(names)
        return [make_suite(n, ("t", Outcome.PASSED), at=time.time()) for n in names]

    return AgentState(
        render_metrics=lambda accept, compress, _: render_registry_off_loop(
            CollectorRegistry(), accept, compress
        ),
        health=Health(intervals={"signup": 60.0}, started_at=time.time()),
        history=History(10),
        suites=["signup"],
        trigger=trigger,
        admin_token=token,
    )


def client(agent: AgentState) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(create_app(agent)), base_url="http://a")


async def test_probes_do_not_depend_on_check_results() -> None:
    agent = state()
    async with client(agent) as http:
        assert (await http.get("/-/ready")).status_code == 503  # not listening yet
        agent.ready = True
        assert (await http.get("/-/ready")).status_code == 200
        assert (await http.get("/-/healthy")).status_code == 200
        health = await http.get("/healthz")
        assert (health.status_code, health.json()["status"]) == (503, "pending")
        agent.alive = lambda: False
        assert (await http.get("/-/healthy")).status_code == 503


async def test_healthz_head_and_no_store() -> None:
    agent = state()
    agent.health.suite_finished(make_suite("signup", ("t", Outcome.PASSED), at=time.time()))
    async with client(agent) as http:
        head = await http.head("/healthz")
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["cache-control"] == "no-store"
        assert (await http.get("/healthz")).headers["cache-control"] == "no-store"


async def test_run_now_is_disabled_without_a_token() -> None:
    async with client(state(token=None)) as http:
        refused = await http.post("/api/v1/run", headers={"Authorization": "Bearer anything"})
    assert refused.status_code == 403
    assert "SYNTHETIC_ADMIN_TOKEN" in refused.json()["error"]


async def test_run_now_checks_the_token_and_the_suite() -> None:
    agent = state(token="s3cret-token")
    auth = {"Authorization": "Bearer s3cret-token"}
    async with client(agent) as http:
        assert (await http.post("/api/v1/run")).status_code == 401
        assert (await http.post("/api/v1/run", params={"suite": "nope"}, headers=auth)).json() == {
            "error": "unknown suite 'nope'"
        }
        assert (
            await http.post("/api/v1/run", headers={"Authorization": "s3cret-token"})
        ).status_code == 401
        assert (await http.post("/api/v1/runs", headers=auth)).status_code == 405
        assert (await http.get("/api/v1/runs", params={"limit": "x"})).status_code == 400
        assert (await http.get("/api/v1/runs", params={"limit": "²"})).status_code == 400
        # Behind basic auth, the token travels in X-Admin-Token.
        behind = {"Authorization": "Basic cHJvbTpwdw==", "X-Admin-Token": "s3cret-token"}
        assert (await http.post("/api/v1/run", headers=behind)).status_code == 200
        ran = await http.post("/api/v1/run", headers=auth)
    assert ran.status_code == 200
    assert [s["suite"] for s in ran.json()["suites"]] == ["signup"]


async def test_metrics_are_gzipped_when_the_scraper_asks() -> None:
    """Prometheus sends ``Accept-Encoding: gzip``; the exposition comes back compressed."""
    import gzip

    from prometheus_client import Gauge

    registry = CollectorRegistry()
    Gauge("synthetic_probe_value", "A value", registry=registry).set(42)
    agent = state()
    agent.render_metrics = lambda accept, compress, _: render_registry_off_loop(
        registry, accept, compress
    )
    async with client(agent) as http:
        # httpx would decode gzip itself: read the raw bytes of the response instead.
        async with http.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as zipped:
            raw = b"".join([chunk async for chunk in zipped.aiter_raw()])
        plain = await http.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(raw) == plain.content
    assert b"synthetic_probe_value 42.0" in plain.content
    assert "content-encoding" not in plain.headers


async def test_every_query_parameter_is_checked() -> None:
    """Bad parameters answer 400 with a JSON message, never 500."""
    agent = state(token="s3cret-token")
    auth = {"Authorization": "Bearer s3cret-token"}
    bad = {
        "/api/v1/runs?limit=\u00b2": "limit must be a whole number from 1 to 500",
        "/api/v1/runs?limit=\u0663": "limit must be a whole number from 1 to 500",
        "/api/v1/runs?limit=-1": "limit must be a whole number from 1 to 500",
        "/api/v1/runs?limit=0": "limit must be a whole number from 1 to 500",
        "/api/v1/runs?limit=501": "limit must be a whole number from 1 to 500",
        "/api/v1/runs?limit=" + "9" * 5000: "limit must be a whole number from 1 to 500",
        "/api/v1/runs?limit=": "limit must be a whole number from 1 to 500",
        "/api/v1/runs?limit=1&limit=2": "query parameter 'limit' given more than once",
        "/api/v1/runs?suite=nope": "unknown suite 'nope'",
        "/api/v1/runs?limt=3": "unknown query parameter 'limt'",
        "/metrics?module=http": "unknown query parameter 'module'",
        "/healthz?x": "unknown query parameter 'x'",
        "/-/healthy?x=1": "unknown query parameter 'x'",
        "/-/ready?x=1": "unknown query parameter 'x'",
        "/api/v1/results?suite=signup": "unknown query parameter 'suite'",
        "/?refresh=1": "unknown query parameter 'refresh'",
    }
    async with client(agent) as http:
        for url, message in bad.items():
            answer = await http.get(url)
            assert (answer.status_code, answer.json()) == (400, {"error": message}), url
        posted = await http.post("/api/v1/run?suite=signup&dry=1", headers=auth)
        assert (posted.status_code, posted.json()) == (
            400,
            {"error": "unknown query parameter 'dry'"},
        )
        good = await http.get("/api/v1/runs", params={"suite": "signup", "limit": "010"})
        assert (good.status_code, good.json()) == (200, {"runs": [], "next": None})
        twice = await http.post("/api/v1/run?suite=signup&suite=signup", headers=auth)
        assert twice.status_code == 200


def test_accept_encoding_parsing() -> None:
    from synthetic_exporter.app.routes import accepts_gzip

    assert accepts_gzip("gzip")
    assert accepts_gzip("deflate, GZip;q=0.5")
    assert accepts_gzip("*")
    assert not accepts_gzip("")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip; q=0.0, br")
    assert not accepts_gzip("gzip;q=bad")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    opened = RunStore(tmp_path / "history.sqlite3", retention_seconds=86400, max_bytes=2**24)
    opened.start()
    yield opened
    opened.close()


def stored_runs(store: RunStore, now: float) -> None:
    """Store six runs of signup, one a minute; every third one fails its "login" test."""
    for i in range(6):
        login = Outcome.FAILED if i % 3 == 0 else Outcome.PASSED
        made = make_suite("signup", ("register", Outcome.PASSED), ("login", login), at=now + 60 * i)
        store.suite_finished(dataclasses.replace(made, run_id=f"run{i}"))
    store.flush()


async def test_runs_pages_and_filters(store: RunStore) -> None:
    agent = state()
    agent.store = store
    now = time.time() - 3600
    stored_runs(store, now)
    async with client(agent) as http:
        first = await http.get("/api/v1/runs", params={"suite": "signup", "limit": "4"})
        assert first.headers["cache-control"] == "no-store"
        body = first.json()
        assert [r["run_id"] for r in body["runs"]] == ["run5", "run4", "run3", "run2"]
        assert body["runs"][0]["tests"] == {"register": "passed", "login": "passed"}
        rest = (
            await http.get("/api/v1/runs", params={"limit": "4", "cursor": body["next"]})
        ).json()
        assert ([r["run_id"] for r in rest["runs"]], rest["next"]) == (["run1", "run0"], None)

        failed = await http.get("/api/v1/runs", params={"test": "login", "outcome": "failed"})
        assert [r["run_id"] for r in failed.json()["runs"]] == ["run3", "run0"]
        assert failed.json()["runs"][0]["failures"][0]["test"] == "login"

        # Runs start a second before they end: run2 starts at now + 119, run4 at now + 239.
        since = datetime.fromtimestamp(now + 100, UTC).isoformat().replace("+00:00", "Z")
        window = await http.get("/api/v1/runs", params={"since": since, "until": str(now + 239)})
        assert [r["run_id"] for r in window.json()["runs"]] == ["run4", "run3", "run2"]
        offset = datetime.fromtimestamp(now + 200).astimezone().isoformat()  # local zone
        later = await http.get("/api/v1/runs", params={"since": offset})
        assert [r["run_id"] for r in later.json()["runs"]] == ["run5", "run4"]


async def test_one_run_in_full(store: RunStore) -> None:
    agent = state()
    agent.store = store
    stored_runs(store, time.time() - 3600)
    async with client(agent) as http:
        found = await http.get("/api/v1/runs/run3")
        assert (found.status_code, found.headers["cache-control"]) == (200, "no-store")
        full = found.json()
        assert (full["run_id"], full["outcome"]) == ("run3", "failed")
        assert [t["name"] for t in full["tests"]] == ["register", "login"]
        assert set(full["tests"][1]) >= {"message", "traceback", "logs", "steps", "requests"}
        # Finished a moment ago, not written yet: found in memory.
        fresh = make_suite("signup", ("register", Outcome.PASSED), at=time.time())
        agent.history.suite_finished(dataclasses.replace(fresh, run_id="fresh"))
        assert (await http.get("/api/v1/runs/fresh")).json()["run_id"] == "fresh"
        missing = await http.get("/api/v1/runs/nope")
        assert (missing.status_code, missing.json()) == (404, {"error": "unknown run 'nope'"})
        extra = await http.get("/api/v1/runs/run3", params={"full": "1"})
        assert (extra.status_code, extra.json()) == (
            400,
            {"error": "unknown query parameter 'full'"},
        )


async def test_bad_run_filters_are_400(store: RunStore) -> None:
    agent = state()
    agent.store = store
    time_hint = "must be unix seconds or an RFC 3339 time, e.g. 2026-12-07T16:00:00Z"
    bad = {
        "outcome=broken": "outcome must be one of passed, failed, error, timeout, skipped, flaky",
        "cursor=abc": "cursor must be a value returned as 'next'",
        "cursor=-1": "cursor must be a value returned as 'next'",
        "since=yesterday": f"since {time_hint}",
        "since=nan": f"since {time_hint}",
        "until=inf": f"until {time_hint}",
        "since=2026-12-07T16:00:00": f"since {time_hint}",  # no zone: ambiguous
        "until=" + "1" * 400: f"until {time_hint}",
        "test=a&test=b": "query parameter 'test' given more than once",
    }
    async with client(agent) as http:
        for query, message in bad.items():
            answer = await http.get(f"/api/v1/runs?{query}")
            assert (answer.status_code, answer.json()) == (400, {"error": message}), query


@pytest.mark.slow
def test_runs_survive_an_agent_restart(tmp_path: Path) -> None:
    """A real agent process: its runs are in /api/v1/runs after it is stopped and restarted."""
    checks = write_checks(
        tmp_path / "checks",
        {
            "check_quick.py": """
            from synthetic_exporter import Suite

            suite = Suite("quick", interval="1h")

            @suite.test
            async def works(t):
                assert 1 + 1 == 2
            """
        },
    )
    state_dir = tmp_path / "state"
    agent = start_agent(checks, state_dir, None)
    try:
        deadline = time.monotonic() + 30
        runs: list[dict[str, Any]] = []
        while not runs and time.monotonic() < deadline:
            runs = httpx.get(f"{agent.url}/api/v1/runs", timeout=5).json()["runs"]
            time.sleep(0.2)
        assert runs, "no run within 30 s"
    finally:
        stop_process(agent.process)
    assert (state_dir / "history.sqlite3").exists()
    again = start_agent(checks, state_dir, None)
    try:
        kept = httpx.get(f"{again.url}/api/v1/runs/{runs[0]['run_id']}", timeout=5)
        assert kept.status_code == 200
        assert kept.json()["tests"][0]["name"] == "works"
    finally:
        stop_process(again.process)
