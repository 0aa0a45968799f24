"""The status pages without a browser: page model, HTML, badges, waterfall geometry, routes.

Routes run in-process over a real run store (SQLite in tmp_path) and real health and history.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from synthetic_exporter.app.assets import ASSETS, asset_url
from synthetic_exporter.app.badges import environment_badge, suite_badge
from synthetic_exporter.app.page_model import (
    StoredHistory,
    anchor,
    bar_title,
    index_page,
    root_cause,
    run_page,
)
from synthetic_exporter.app.pages import page_routes, wants_gzip
from synthetic_exporter.app.rendering import render
from synthetic_exporter.app.routes import QueryError, takes
from synthetic_exporter.app.waterfall import waterfall
from synthetic_exporter.core.results import (
    PHASES,
    Outcome,
    RequestRecord,
    SuiteResult,
    to_jsonable,
)
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History
from synthetic_exporter.exporter.run_store import RunStore, TestRun
from tests.factories import make_suite, make_test

NOW = 1_800_000_000.0
NASTY = "assert 503 == 201\n<script>alert(\"x\")</script> & 'quoted'"
SUITES = ("cdn", "invoices", "payments", "signup", "storage")


def outage(at: float = NOW) -> list[SuiteResult]:
    """signup failed; invoices and payments skipped because of it; cdn flaky; storage passed."""
    signup = make_suite(
        "signup",
        ("create_customer", Outcome.PASSED),
        ("confirm_email", Outcome.FAILED),
        ("log_in", Outcome.SKIPPED),
        at=at,
    )
    signup = replace(
        signup,
        run_id="signup-run",
        tests=tuple(
            replace(t, message=NASTY) if t.outcome is Outcome.FAILED else t for t in signup.tests
        ),
    )
    return [
        signup,
        make_suite(
            "invoices",
            ("issue_invoice", Outcome.SKIPPED),
            at=at,
            skip_reason="dependency 'signup' failed",
        ),
        make_suite(
            "payments",
            ("pay_by_card", Outcome.SKIPPED),
            at=at,
            skip_reason="dependency 'invoices' was skipped: dependency 'signup' failed",
        ),
        make_suite("cdn", ("edge_matches_origin", Outcome.FLAKY), at=at),
        make_suite("storage", ("prefix_hygiene", Outcome.PASSED), at=at),
    ]


def health_of(results: list[SuiteResult]) -> dict[str, Any]:
    health = Health(intervals=dict.fromkeys(SUITES, 60.0), started_at=NOW - 10)
    for result in results:
        health.suite_finished(result)
    return health.report(NOW)[1]


def model(results: list[SuiteResult], stored: StoredHistory | None = None) -> Any:
    return index_page(
        health=health_of(results),
        latest=[to_jsonable(r) for r in results],
        stored=stored or StoredHistory(),
        environment="staging",
        now=NOW,
    )


def test_root_causes_come_first_with_their_dependents_beneath() -> None:
    page = model(outage())
    assert [(g.suite, g.kind) for g in page.groups] == [
        ("signup", "failed"),
        ("cdn", "flaky"),
        ("storage", "passing"),
    ]
    signup = page.groups[0]
    assert [d.suite for d in signup.dependents] == ["invoices", "payments"]
    assert "signup" in signup.dependents[1].skip_reason
    # Inside the failed suite, the failed test comes first; the headline names it.
    assert [t.test for t in signup.tests] == ["confirm_email", "create_customer", "log_in"]
    assert page.headline is not None
    assert (page.headline.test, page.headline.message.splitlines()[0]) == (
        "confirm_email",
        "assert 503 == 201",
    )
    assert page.counts["failed"] == 1
    assert page.headline.failing_since is not None  # from /healthz until the store has it


def test_skips_with_other_reasons_are_not_grouped_under_a_failure() -> None:
    results = outage()
    results[1] = replace(results[1], skip_reason="dependency 'signup' has not run yet")
    page = model(results)
    assert [g.suite for g in page.groups] == ["signup", "cdn", "storage", "invoices"]
    assert [d.suite for d in page.groups[0].dependents] == ["payments"]
    assert root_cause("dependency 'a' was skipped: dependency 'b' failed") == "b"
    assert root_cause("dependency 'a' has not run yet") is None


def test_passing_environment_has_no_headline() -> None:
    results = [make_suite(s, ("t", Outcome.PASSED), at=NOW) for s in SUITES]
    page = model(results)
    assert page.headline is None
    assert page.status == "pass"
    assert [g.kind for g in page.groups] == ["passing"] * 5


def stored_runs(outcomes: list[str], start: float = NOW - 3000) -> list[TestRun]:
    """Runs of signup/confirm_email, one a minute, newest first."""
    runs = [
        TestRun(f"r{i}", "signup", "confirm_email", o, start + 60 * i, 0.1 * (i + 1), "")
        for i, o in enumerate(outcomes)
    ]
    return runs[::-1]


def test_bars_uptime_failing_since_and_sparkline() -> None:
    runs = stored_runs(["passed"] * 35 + ["failed"] * 3)
    stored = StoredHistory(
        recent={("signup", "confirm_email"): runs},
        uptime_day={("signup", "confirm_email"): 35 / 38},
        uptime_week={("signup", "confirm_email"): 0.999},
        failing_since={("signup", "confirm_email"): NOW - 150},
    )
    row = model(outage(), stored).groups[0].tests[0]
    assert len(row.bars) == 30  # the last 30, oldest first
    assert [b.run_id for b in row.bars[-3:]] == ["r35", "r36", "r37"]
    newest = row.bars[-1]
    title = bar_title(newest.outcome, newest.started_at, newest.duration_seconds)
    assert (
        title
        == f"failed · {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(NOW - 780))} UTC · 3800 ms"
    )
    assert (row.uptime_day, row.uptime_week) == ("92.1%", "99.9%")
    assert row.failing_since is not None
    assert row.failing_since.relative == "2m ago"
    assert row.failing_since.absolute.endswith("UTC")
    assert row.sparkline is not None
    assert len(row.sparkline.points.split()) == 30
    assert row.last_run_id == "r37"
    # The newest run is the longest: its point is at the top of the box (y = PAD).
    assert row.sparkline.points.split()[-1].endswith(",2.0")


def test_html_escapes_messages_and_names() -> None:
    results = outage()
    html = render("index.html", page=model(results), environment="<env>", live_url="/?fragment=1")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;quoted&#39;" in html
    assert "&lt;env&gt;" in html
    # The first test row on the page is the failing test, with its message.
    first_row = re.search(r'<article class="test o-(\w+)" id="([^"]+)"', html)
    assert first_row is not None
    assert first_row.groups() == ("failed", anchor("signup", "confirm_email"))
    assert html.index("assert 503 == 201") < html.index("create_customer")
    assert 'data-live="/?fragment=1"' in html
    # Nothing from the internet: every link and source is on the agent (or a data: URL).
    for url in re.findall(r'(?:href|src)="([^"]*)"', html):
        assert url.startswith(("/", "#", "data:")), url
    assert "<noscript>" in html
    assert 'http-equiv="refresh"' not in html
    assert 'name="viewport"' in html


def test_badges_are_svg_that_say_passing_or_failing() -> None:
    failing = environment_badge("staging", health_of(outage())["suites"])
    passing = environment_badge("prod & co", dict.fromkeys(SUITES, "pass"))
    for svg, words in ((failing, "failing 1/5"), (passing, "passing 5/5")):
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert words in texts
    assert "prod &amp; co" in passing
    assert "failing" in ET.tostring(ET.fromstring(suite_badge("signup", "fail"))).decode()
    assert 'fill="#c62828"' in failing
    assert 'fill="#2e7d32"' in passing


def request(start: float, duration: float, **phases: float) -> RequestRecord:
    return RequestRecord(
        target="default",
        method="GET",
        path="/x",
        status=200,
        duration_seconds=duration,
        phases=phases,
        started_at=start,
    )


def test_waterfall_geometry() -> None:
    test = make_test("s", "t", Outcome.PASSED, at=101.0, duration=1.0)  # started at 100
    test = replace(
        test,
        requests=(
            request(100.2, 0.3, connect=0.1, processing=0.15),  # 0.05 s unaccounted for
            request(100.5, 0.5, processing=0.4, transfer=0.1),
        ),
    )
    fall = waterfall(to_jsonable(test))
    assert fall is not None
    first, second = fall.rows
    assert (first.x, first.width) == (20.0, 30.0)
    assert [(s.phase, s.x, s.width) for s in first.segments] == [
        ("other", 20.0, 5.0),
        ("connect", 25.0, 10.0),
        ("processing", 35.0, 15.0),
    ]
    assert (second.x, second.width) == (50.0, 50.0)
    assert [(s.phase, s.x, s.width) for s in second.segments] == [
        ("processing", 50.0, 40.0),
        ("transfer", 90.0, 10.0),
    ]
    assert (first.offset, first.duration) == ("+200 ms", "300 ms")


def test_waterfall_shows_the_address_that_answered_and_copes_without_it() -> None:
    test = make_test("s", "t", Outcome.PASSED, at=101.0, duration=1.0)
    recorded = replace(request(100.2, 0.3), remote_address="192.0.2.7", ip_family=4)
    stored = to_jsonable(replace(test, requests=(recorded, request(100.5, 0.3))))
    del stored["requests"][1]["remote_address"], stored["requests"][1]["ip_family"]  # older run
    fall = waterfall(stored)
    assert fall is not None
    assert [row.address for row in fall.rows] == ["IPv4 192.0.2.7", ""]


def test_waterfall_lays_records_without_start_end_to_end() -> None:
    test = replace(
        make_test("s", "t", Outcome.PASSED, at=101.0, duration=0.5),
        requests=(request(0.0, 0.5), request(0.0, 0.5)),
    )
    fall = waterfall(to_jsonable(test))
    assert fall is not None
    assert [(r.x, r.width) for r in fall.rows] == [(0.0, 50.0), (50.0, 50.0)]
    assert waterfall(to_jsonable(make_test("s", "t", Outcome.PASSED))) is None


def test_run_page_shows_every_part_of_a_test() -> None:
    record = replace(
        request(NOW - 0.9, 0.2, connect=0.05, tls=0.05, processing=0.1),
        status=None,
        error="ConnectError: <refused>",
        cache="Hit",
        pop="FRA",
        tls_version="TLSv1.3",
        cert_not_after=NOW + 30 * 86400,
        remote_address="2600:9000:2001::1",
        ip_family=6,
    )
    test = replace(
        make_test("signup", "confirm_email", Outcome.FAILED, at=NOW, message=NASTY),
        traceback="checks/signup.py:10: in confirm_email\n    assert 503 == 201",
        requests=(record,),
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )
    run = replace(outage()[0], tests=(test,))
    html = render("run.html", page=run_page(to_jsonable(run), NOW), environment="e")
    assert f'id="{anchor("signup", "confirm_email")}"' in html
    assert "ConnectError: &lt;refused&gt;" in html
    shown_parts = ("no response", "cache Hit", "edge FRA", "TLSv1.3", "cert until", "traceback")
    for shown in (*shown_parts, "IPv6 2600:9000:2001::1"):
        assert shown in html
    assert re.findall(r'<rect class="ph-(\w+)"', html) == ["connect", "tls", "processing"]
    legend = re.findall(r'class="swatch ph-(\w+)"', html)
    assert legend == ["other", *PHASES]  # every phase the agent measures, in order
    assert "0af7651916cd43dd8448eb211c80319c" in html


# --- routes, in-process over a real run store ------------------------------------------------


@dataclass
class State:
    health: Health
    history: History
    store: RunStore
    environment: str = "staging"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    runs = RunStore(tmp_path / "history.sqlite3", 7 * 86400, 64 * 1024 * 1024)
    runs.start()
    yield runs
    runs.close()


@pytest.fixture
async def http(store: RunStore) -> AsyncIterator[httpx.AsyncClient]:
    state = State(
        Health(intervals=dict.fromkeys(SUITES, 60.0), started_at=time.time()), History(10), store
    )
    for result in outage(time.time()):
        for listener in (state.health, state.history, store):
            listener.suite_finished(result)
    store.flush()

    async def bad_query(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, 400)

    app = Starlette(routes=page_routes(state, takes), exception_handlers={QueryError: bad_query})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://a") as c:
        yield c


async def test_index_and_fragment(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<title>synthetic-exporter: fail</title>" in page.text
    assert 'href="/runs/signup-run#t-signup.confirm_email"' in page.text
    assert page.headers["content-encoding"] == "gzip"  # httpx asks for it, and decodes it
    plain = await http.get("/", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text.startswith("<!doctype html>")
    for url in ("/?refresh=1", "/runs/signup-run?fragment=1", "/badge.svg?style=flat"):
        refused = await http.get(url)
        assert refused.status_code == 400, url
        assert refused.json()["error"].startswith("unknown query parameter"), url
    fragment = await http.get("/?fragment=1")
    assert fragment.text.lstrip().startswith('<div class="live-root"')
    assert "<html" not in fragment.text
    assert "confirm_email" in fragment.text


async def test_run_and_test_pages(http: httpx.AsyncClient) -> None:
    run = await http.get("/runs/signup-run")
    assert run.status_code == 200
    assert "&lt;script&gt;" in run.text
    missing = await http.get("/runs/nope")
    assert missing.status_code == 404
    assert "No run" in missing.text
    history = await http.get("/tests/signup/confirm_email")
    assert history.status_code == 200
    assert 'href="/runs/signup-run#t-signup.confirm_email"' in history.text
    assert (await http.get("/tests/signup/nope")).status_code == 404


async def test_badges_and_static_files(http: httpx.AsyncClient) -> None:
    badge = await http.get("/badge.svg")
    assert badge.headers["content-type"].startswith("image/svg+xml")
    assert badge.headers["cache-control"] == "no-cache"
    assert "failing 1/5" in badge.text
    same = await http.get("/badge.svg", headers={"If-None-Match": badge.headers["etag"]})
    assert (same.status_code, same.content) == (304, b"")
    suite = await http.get("/badges/storage.svg")
    assert "passing" in suite.text
    assert (await http.get("/badges/nope.svg")).status_code == 404
    css = await http.get(asset_url("status.css"))
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert css.headers["content-type"].startswith("text/css")
    again = await http.get("/static/status.css", headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "public, max-age=60"
    assert (await http.get("/static/nope.js")).status_code == 404
    assert set(ASSETS) == {"status.css", "live.js"}


def test_gzip_is_used_only_when_accepted() -> None:
    assert wants_gzip("gzip, deflate, br")
    assert wants_gzip("br;q=1.0, GZIP;q=0.5")
    assert wants_gzip("*")
    assert not wants_gzip("gzip;q=0")
    assert not wants_gzip("gzip; q=0.000")
    assert not wants_gzip("identity")
    assert not wants_gzip("")


def test_after_a_restart_tests_come_from_the_store() -> None:
    """No result in memory yet: the suites are pending, their tests and bars from the store."""
    runs = stored_runs(["passed", "failed"])
    stored = StoredHistory(recent={("signup", "confirm_email"): runs})
    page = model([], stored)
    signup = next(g for g in page.groups if g.suite == "signup")
    assert (signup.kind, signup.run_id) == ("pending", "r1")
    assert [(t.test, t.outcome, len(t.bars)) for t in signup.tests] == [
        ("confirm_email", "failed", 2)
    ]
