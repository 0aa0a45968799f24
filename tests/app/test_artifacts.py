"""A browser test's pages and artifacts in the API and on the run page.

In-process app over a real run store (SQLite in tmp_path) and real files in its state dir.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from synthetic_exporter.app.routes import AgentState, create_app
from synthetic_exporter.core.results import AssetCount, Outcome, PageRecord, SuiteResult
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History
from synthetic_exporter.exporter.metrics import render_registry_off_loop
from synthetic_exporter.exporter.run_store import RunStore
from tests.factories import make_suite, make_test

DAY = 86400.0
TEST = "dashboard/home"  # a subtest: its directory is dashboard__home


def png(width: int = 2, height: int = 2) -> bytes:
    """Return a real (tiny, grey) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def browser_run(run_id: str, at: float, root: Path, *, write: bool = True) -> SuiteResult:
    """Return a failed browser run of suite "web"; its files are written as the runner does."""
    page = PageRecord(
        target="web",
        path="/dashboard",
        status=200,
        phases={"dns": 0.002, "ttfb": 0.05, "dom_content_loaded": 0.2, "load": 0.45},
        vitals={"fcp": 0.31, "lcp": 2.75, "tbt": 0.12},
        cls=0.042,
        requests=14,
        transfer_bytes=524_288,
        assets=(
            AssetCount("web", "LHR", "Hit", 9),
            AssetCount("web", "LHR", "Miss", 3),
            AssetCount("other", "none", "none", 2),
        ),
        started_at=at - 1,
    )
    slow = PageRecord(
        target="web",
        path="/reports",
        status=None,
        phases={},
        vitals={},
        error="TimeoutError: page.goto: Timeout 5000ms exceeded",
    )
    test = dataclasses.replace(
        make_test("web", TEST, Outcome.FAILED, at=at, message="LCP 2.75 s over 2.5 s"),
        pages=(page, slow),
        artifacts=("screenshot.png", "trace.zip"),
    )
    if write:
        folder = root / run_id / "dashboard__home"
        folder.mkdir(parents=True)
        (folder / "screenshot.png").write_bytes(png())
        (folder / "trace.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
        (folder / "unlisted.txt").write_text("not in the run's record")
    made = make_suite("web", at=at)
    return dataclasses.replace(made, run_id=run_id, tests=(test,), outcome=Outcome.FAILED)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    opened = RunStore(tmp_path / "state" / "history.sqlite3", 7 * DAY, 64 * 1024 * 1024)
    opened.start()
    yield opened
    opened.close()


@pytest.fixture
def agent(store: RunStore) -> AgentState:
    async def trigger(names: list[str]) -> list[SuiteResult]:
        return []

    return AgentState(
        render_metrics=lambda accept, compress, _: render_registry_off_loop(
            CollectorRegistry(), accept, compress
        ),
        health=Health(intervals={"web": 60.0}, started_at=time.time()),
        history=History(10),
        suites=["web"],
        trigger=trigger,
        admin_token="s3cret",
        store=store,
    )


@pytest.fixture
async def http(agent: AgentState) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(agent)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://a") as c:
        yield c


def stored(store: RunStore, result: SuiteResult) -> None:
    store.suite_finished(result)
    store.flush()


async def test_pages_and_artifacts_are_in_the_run_api(
    store: RunStore, agent: AgentState, http: httpx.AsyncClient
) -> None:
    result = browser_run("b1", time.time(), store.artifacts_dir)
    stored(store, result)
    agent.history.suite_finished(result)
    run = (await http.get("/api/v1/runs/b1")).json()
    test = run["tests"][0]
    assert test["artifacts"] == ["screenshot.png", "trace.zip"]
    assert [p["path"] for p in test["pages"]] == ["/dashboard", "/reports"]
    assert test["pages"][0]["vitals"] == {"fcp": 0.31, "lcp": 2.75, "tbt": 0.12}
    assert test["pages"][0]["assets"][0] == {
        "target": "web",
        "pop": "LHR",
        "cache": "Hit",
        "responses": 9,
    }
    latest = (await http.get("/api/v1/results")).json()["suites"][0]["tests"][0]
    assert latest["pages"][1]["error"].startswith("TimeoutError")
    assert latest["artifacts"] == ["screenshot.png", "trace.zip"]


async def test_artifacts_are_served_with_their_types(
    store: RunStore, http: httpx.AsyncClient
) -> None:
    stored(store, browser_run("b1", time.time(), store.artifacts_dir))
    shot = await http.get("/runs/b1/artifacts/dashboard__home/screenshot.png")
    assert shot.status_code == 200
    assert shot.content == png()
    assert shot.headers["content-type"] == "image/png"
    assert shot.headers["content-disposition"].startswith("inline")
    assert shot.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in shot.headers["content-security-policy"]
    trace = await http.get("/runs/b1/artifacts/dashboard__home/trace.zip")
    assert trace.status_code == 200
    assert trace.headers["content-type"] == "application/zip"
    assert trace.headers["content-disposition"] == 'attachment; filename="trace.zip"'
    head = await http.head("/runs/b1/artifacts/dashboard__home/screenshot.png")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(png()))


async def test_a_run_not_yet_stored_serves_its_artifacts_from_memory(
    store: RunStore, agent: AgentState, http: httpx.AsyncClient
) -> None:
    agent.history.suite_finished(browser_run("m1", time.time(), store.artifacts_dir))
    shot = await http.get("/runs/m1/artifacts/dashboard__home/screenshot.png")
    assert (shot.status_code, shot.content) == (200, png())


@pytest.mark.parametrize(
    "path",
    [
        "/runs/b1/artifacts/dashboard__home/unlisted.txt",  # on disk, not in the record
        "/runs/b1/artifacts/dashboard__home/nope.png",
        "/runs/b1/artifacts/other__test/screenshot.png",
        "/runs/b2/artifacts/dashboard__home/screenshot.png",
        "/runs/b1/artifacts/..%2F..%2Fhistory.sqlite3/screenshot.png",
        "/runs/b1/artifacts/dashboard__home/..%2F..%2F..%2Fhistory.sqlite3",
        "/runs/b1/artifacts/dashboard__home/%2e%2e",
        "/runs/%2e%2e/artifacts/state/history.sqlite3",
        "/runs/b1/artifacts/dashboard__home/..",
    ],
)
async def test_nothing_but_a_listed_file_is_served(
    store: RunStore, http: httpx.AsyncClient, path: str
) -> None:
    stored(store, browser_run("b1", time.time(), store.artifacts_dir))
    response = await http.get(path)
    assert response.status_code == 404, response.text
    assert b"SQLite" not in response.content


async def test_a_symlink_out_of_the_run_is_refused(
    store: RunStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    stored(store, browser_run("b1", time.time(), store.artifacts_dir))
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    shot = store.artifacts_dir / "b1" / "dashboard__home" / "screenshot.png"
    shot.unlink()
    shot.symlink_to(secret)
    response = await http.get("/runs/b1/artifacts/dashboard__home/screenshot.png")
    assert response.status_code == 404
    assert b"not yours" not in response.content


async def test_artifacts_are_gone_after_retention(tmp_path: Path, agent: AgentState) -> None:
    path = tmp_path / "retained" / "history.sqlite3"
    first = RunStore(path, DAY, 64 * 1024 * 1024)
    first.start()
    stored(first, browser_run("old", time.time() - 2 * DAY, first.artifacts_dir))
    first.close()
    again = RunStore(path, DAY, 64 * 1024 * 1024)
    again.start()  # retention at start
    try:
        agent.store = again
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(create_app(agent)), base_url="http://a"
        ) as http:
            response = await http.get("/runs/old/artifacts/dashboard__home/screenshot.png")
            assert response.status_code == 404
            assert (await http.get("/runs/old")).status_code == 404
        assert not (again.artifacts_dir / "old").exists()
    finally:
        again.close()


async def test_run_page_shows_the_pages_table_and_links_the_artifacts(
    store: RunStore, http: httpx.AsyncClient
) -> None:
    stored(store, browser_run("b1", time.time(), store.artifacts_dir))
    page = await http.get("/runs/b1")
    assert page.status_code == 200
    html = page.text
    table = html[html.index('<table class="pages">') : html.index("</table>")]
    rows = re.findall(r"<tr.*?</tr>", table, flags=re.DOTALL)
    assert len(rows) == 3  # the header and two pages
    first = rows[1]
    assert "<code>web /dashboard</code>" in first
    assert ">200<" in first
    for text in ("dns 2 ms", "ttfb 50 ms", "dom_content_loaded 200 ms", "load 450 ms"):
        assert text in first
    assert '<td class="vital-fcp">310 ms</td>' in first
    assert '<td class="vital-lcp">2.75 s</td>' in first
    assert '<td class="vital-cls">0.042</td>' in first
    assert '<td class="vital-tbt">120 ms</td>' in first
    assert "<td>14</td>" in first
    assert "<td>512.0 KiB</td>" in first
    assert '<td class="hit-ratio">75% of 12</td>' in first  # 9 hits of 12 CDN responses
    second = rows[2]
    assert 'class="page-error"' in second
    assert "TimeoutError: page.goto: Timeout 5000ms exceeded" in second
    assert '<td class="vital-lcp">—</td>' in second
    shot = "/runs/b1/artifacts/dashboard__home/screenshot.png"
    assert f'<img src="{shot}"' in html
    trace = "/runs/b1/artifacts/dashboard__home/trace.zip"
    assert f'<a href="{trace}" download="trace.zip">' in html
    assert "playwright show-trace trace.zip" in html
    # The links work: the image is the PNG the runner wrote.
    img = re.search(r'<img src="([^"]+)"', html)
    assert img is not None
    assert (await http.get(img.group(1))).content == png()


async def test_run_page_of_a_run_without_pages_has_no_table(
    store: RunStore, http: httpx.AsyncClient
) -> None:
    result = browser_run("plain", time.time(), store.artifacts_dir, write=False)
    test = dataclasses.replace(result.tests[0], pages=(), artifacts=())
    stored(store, dataclasses.replace(result, tests=(test,)))
    html = (await http.get("/runs/plain")).text
    assert "dashboard/home" in html
    assert 'class="pages"' not in html
    assert "/artifacts/" not in html
