"""The agent's routes, in-process: probes, HEAD, no-store, and the admin endpoint's guard."""

from __future__ import annotations

import time

import httpx
from prometheus_client import CollectorRegistry

from synthetic_exporter.app.routes import AgentState, create_app
from synthetic_exporter.core.results import Outcome, SuiteResult
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History
from synthetic_exporter.exporter.metrics import render_registry_off_loop
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
        "/api/v1/runs?limit=\u00b2": "limit must be a whole number from 1 to 10",
        "/api/v1/runs?limit=\u0663": "limit must be a whole number from 1 to 10",
        "/api/v1/runs?limit=-1": "limit must be a whole number from 1 to 10",
        "/api/v1/runs?limit=0": "limit must be a whole number from 1 to 10",
        "/api/v1/runs?limit=11": "limit must be a whole number from 1 to 10",
        "/api/v1/runs?limit=" + "9" * 5000: "limit must be a whole number from 1 to 10",
        "/api/v1/runs?limit=": "limit must be a whole number from 1 to 10",
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
        assert (good.status_code, good.json()) == (200, {"runs": []})
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
