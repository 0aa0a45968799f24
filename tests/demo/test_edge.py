"""The demo's CloudFront-like edge (``/cdn``) and S3-like origin (``/origin``), through ASGI."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx
import pytest
from starlette.applications import Starlette

from synthetic_exporter.demo import edge as edge_module
from synthetic_exporter.demo.api import create_app
from synthetic_exporter.demo.edge import DEFAULT_POPS, StoredObject, pop_for, seed_objects

LOGO = "assets/logo.svg"
VIA = re.compile(r"^1\.1 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)$")


@dataclass
class FakeClock:
    """A monotonic clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> Starlette:
    return create_app(clock=clock, cdn_ttl=60)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
        yield c


def x_cache(response: httpx.Response) -> str:
    return response.headers["x-cache"]


async def test_cache_status_goes_miss_hit_refreshhit(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    origin = await client.get(f"/origin/{LOGO}")
    first = await client.get(f"/cdn/{LOGO}")
    assert (first.status_code, x_cache(first)) == (200, "Miss from cloudfront")
    assert "age" not in first.headers
    assert first.content == origin.content
    assert first.headers["etag"] == origin.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=60"
    assert first.headers["content-type"] == "image/svg+xml"
    assert VIA.match(first.headers["via"])
    assert len(first.headers["x-amz-cf-id"]) == 56

    clock.now += 30
    second = await client.get(f"/cdn/{LOGO}")
    assert (x_cache(second), second.headers["age"]) == ("Hit from cloudfront", "30")
    assert second.content == origin.content
    assert second.headers["x-amz-cf-id"] != first.headers["x-amz-cf-id"]

    clock.now += 31  # past max-age; the origin still has the same ETag
    third = await client.get(f"/cdn/{LOGO}")
    assert (x_cache(third), third.headers["age"]) == ("RefreshHit from cloudfront", "0")
    assert third.content == origin.content

    clock.now += 5
    fourth = await client.get(f"/cdn/{LOGO}")
    assert (x_cache(fourth), fourth.headers["age"]) == ("Hit from cloudfront", "5")


async def test_a_changed_object_is_fetched_again_once_the_copy_expires(
    client: httpx.AsyncClient, app: Starlette, clock: FakeClock
) -> None:
    old = await client.get(f"/cdn/{LOGO}")
    objects = app.state.demo.edge.objects
    objects[LOGO] = StoredObject(
        key=LOGO, body=b"<svg/>", content_type="image/svg+xml", cache_control="public, max-age=60"
    )
    stale = await client.get(f"/cdn/{LOGO}")
    assert (x_cache(stale), stale.headers["etag"]) == ("Hit from cloudfront", old.headers["etag"])
    clock.now += 60
    fresh = await client.get(f"/cdn/{LOGO}")
    assert (x_cache(fresh), fresh.content) == ("Miss from cloudfront", b"<svg/>")
    assert fresh.headers["etag"] == f'"{hashlib.md5(b"<svg/>").hexdigest()}"'


async def test_pops_are_fixed_per_key_and_spread(client: httpx.AsyncClient) -> None:
    seen: dict[str, set[str]] = {}
    for key in seed_objects():
        for _ in range(2):
            r = await client.get(f"/cdn/{key}")
            seen.setdefault(key, set()).add(r.headers["x-amz-cf-pop"])
    assert all(len(pops) == 1 for pops in seen.values())
    assert set().union(*seen.values()) == set(DEFAULT_POPS)
    assert {key: pop_for(key, DEFAULT_POPS) for key in seen} == {
        key: pops.pop() for key, pops in seen.items()
    }


async def test_pops_are_configurable() -> None:
    transport = httpx.ASGITransport(app=create_app(pops=["SFO5-C1"]))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        for key in seed_objects():
            r = await client.get(f"/cdn/{key}")
            assert r.headers["x-amz-cf-pop"] == "SFO5-C1"


async def test_origin_answers_like_s3(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/origin/{LOGO}")
    assert r.status_code == 200
    assert r.headers["server"] == "AmazonS3"
    assert re.fullmatch(r"[0-9A-F]{16}", r.headers["x-amz-request-id"])
    assert r.headers["etag"] == f'"{hashlib.md5(r.content).hexdigest()}"'
    assert parsedate_to_datetime(r.headers["last-modified"]).tzinfo is not None
    assert 1000 < len(r.content) < 10_000
    assert "x-cache" not in r.headers

    etag = r.headers["etag"]
    unchanged = await client.get(f"/origin/{LOGO}", headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["etag"] == etag

    head = await client.head(f"/origin/{LOGO}")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(r.content))

    missing = await client.get("/origin/assets/nope.png")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/xml")
    assert b"<Code>NoSuchKey</Code>" in missing.content


async def test_seeded_objects_are_a_few_kb_and_stable() -> None:
    first, second = seed_objects(), seed_objects()
    first = {key: obj for key, obj in first.items() if not key.startswith("app/")}  # web app
    assert sorted(first) == ["assets/app.js", "assets/logo.svg", "downloads/report.pdf"]
    for key, obj in first.items():
        assert 1000 < len(obj.body) < 10_000
        assert obj.etag == second[key].etag
    assert first["downloads/report.pdf"].body.startswith(b"%PDF-1.4")


async def test_origin_errors_pass_through_the_edge_and_are_not_cached(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/cdn/assets/nope.png")
    assert (missing.status_code, x_cache(missing)) == (404, "Error from cloudfront")
    assert missing.headers["x-amz-cf-pop"] in DEFAULT_POPS
    assert (await client.get("/cdn/assets/nope.png")).headers["x-cache"] == "Error from cloudfront"


async def test_an_origin_outage_fails_misses_but_not_hits(client: httpx.AsyncClient) -> None:
    assert x_cache(await client.get(f"/cdn/{LOGO}")) == "Miss from cloudfront"
    fault = await client.post("/admin/faults", json={"path": "/origin", "status": 503})
    assert fault.status_code == 201
    assert (await client.get(f"/origin/{LOGO}")).status_code == 503
    cached = await client.get(f"/cdn/{LOGO}")
    assert (cached.status_code, x_cache(cached)) == (200, "Hit from cloudfront")
    cold = await client.get("/cdn/assets/app.js")
    assert (cold.status_code, x_cache(cold)) == (503, "Error from cloudfront")


async def test_a_slow_origin_times_out_at_the_edge(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge_module, "ORIGIN_TIMEOUT_SECONDS", 0.05)
    await client.post("/admin/faults", json={"path": "/origin", "delay_ms": 100})
    r = await client.get(f"/cdn/{LOGO}")
    assert (r.status_code, x_cache(r)) == (504, "Error from cloudfront")


async def test_a_fault_on_the_edge_still_looks_like_cloudfront(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/admin/faults", json={"path": "/cdn", "status": 502})
    r = await client.get(f"/cdn/{LOGO}")
    assert (r.status_code, x_cache(r)) == (502, "Error from cloudfront")
    assert r.headers["x-amz-cf-pop"] == pop_for(LOGO, DEFAULT_POPS)
    assert VIA.match(r.headers["via"])
    assert (await client.get(f"/origin/{LOGO}")).status_code == 200
