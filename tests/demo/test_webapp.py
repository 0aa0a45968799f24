"""The demo web app (``/cdn/app/``, ``/origin/app/``) and its faults, through ASGI."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from synthetic_exporter.demo.api import create_app
from synthetic_exporter.demo.webapp import HERO, webapp_files

ASSET_LINK = re.compile(r'(?:src|href)="([^":]+\.(?:css|js|svg))"')


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(cdn_ttl=60))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
        yield c


def test_the_app_has_pages_styles_scripts_and_images() -> None:
    kinds = {key: kind for key, _, kind in webapp_files()}
    assert kinds["app/index.html"] == kinds["app/dashboard.html"] == "text/html; charset=utf-8"
    assert kinds["app/style.css"].startswith("text/css")
    assert kinds["app/dashboard.js"].startswith("text/javascript")
    images = [key for key, kind in kinds.items() if kind == "image/svg+xml"]
    assert 3 <= len(images) <= 6
    assert HERO in images


@pytest.mark.parametrize("page", ["", "index.html", "dashboard.html"])
async def test_every_asset_a_page_links_is_served_by_edge_and_origin(
    client: httpx.AsyncClient, page: str
) -> None:
    r = await client.get(f"/cdn/app/{page}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    links = ASSET_LINK.findall(r.text)
    assert {"style.css", "app.js", "img/hero.svg"} <= set(links)
    for link in links:
        via_edge = await client.get(f"/cdn/app/{link}")
        from_origin = await client.get(f"/origin/app/{link}")
        assert via_edge.status_code == from_origin.status_code == 200, link
        assert via_edge.content == from_origin.content
        assert via_edge.headers["x-amz-cf-pop"]
        assert from_origin.headers["server"] == "AmazonS3"


async def test_assets_are_cached_at_the_edge(client: httpx.AsyncClient) -> None:
    first = await client.get("/cdn/app/style.css")
    second = await client.get("/cdn/app/style.css")
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert second.headers["x-cache"] == "Hit from cloudfront"


async def test_an_edge_miss_fault_bypasses_the_cache_until_removed(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/cdn/app/style.css")
    await client.get("/cdn/assets/logo.svg")
    r = await client.post("/admin/faults", json={"path": "/edge-miss/app/"})
    assert r.status_code == 201
    for _ in range(3):
        r = await client.get("/cdn/app/style.css")
        assert (r.status_code, r.headers["x-cache"]) == (200, "Miss from cloudfront")
        assert "age" not in r.headers
    other = await client.get("/cdn/assets/logo.svg")  # outside the fault's prefix
    assert other.headers["x-cache"] == "Hit from cloudfront"
    await client.delete("/admin/faults")
    r = await client.get("/cdn/app/style.css")
    assert r.headers["x-cache"] == "Hit from cloudfront"  # the copy from before the fault


async def test_an_edge_miss_passes_origin_failures_on(client: httpx.AsyncClient) -> None:
    await client.post("/admin/faults", json={"path": "/edge-miss/"})
    await client.post("/admin/faults", json={"path": "/origin/app/", "status": 503})
    r = await client.get("/cdn/app/style.css")
    assert (r.status_code, r.headers["x-cache"]) == (503, "Error from cloudfront")


async def test_a_delay_fault_slows_one_asset_only(client: httpx.AsyncClient) -> None:
    r = await client.post("/admin/faults", json={"path": f"/cdn/{HERO}", "delay_ms": 300})
    assert r.status_code == 201
    started = time.monotonic()
    await client.get("/cdn/app/style.css")
    fast = time.monotonic() - started
    started = time.monotonic()
    r = await client.get(f"/cdn/{HERO}")
    slow = time.monotonic() - started
    assert r.status_code == 200
    assert slow >= 0.3 > fast
