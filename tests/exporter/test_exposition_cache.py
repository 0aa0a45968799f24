"""One render for concurrent scrapes: joined in flight, reused while current and young."""

from __future__ import annotations

import gzip
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest

from synthetic_exporter.app.http_limits import Limits
from synthetic_exporter.app.routes import AgentState, create_app
from synthetic_exporter.exporter.exposition_cache import ExpositionCache, RenderFailed
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History
from tests.app.test_http_limits import serving


class SlowRender:
    """A render that takes ``seconds`` and counts its calls (from worker threads)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls = 0
        self.lock = threading.Lock()
        self.fail = False

    def __call__(self, accept: str | None) -> tuple[list[bytes], str]:
        with self.lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.seconds)
        if self.fail:
            raise ValueError("broken collector")
        return [f"render {n}\n".encode()] * 100, "text/plain; version=0.0.4; charset=utf-8"


async def test_concurrent_requests_share_one_render() -> None:
    render = SlowRender(0.2)
    cache = ExpositionCache(render, lambda: 0)
    bodies: list[bytes] = []

    async def scrape() -> None:
        bodies.append((await cache.get(None, False))[0])

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(scrape)
    assert render.calls == 1
    assert len(set(bodies)) == 1


async def test_formats_and_encodings_render_separately() -> None:
    render = SlowRender()
    cache = ExpositionCache(render, lambda: 0)
    plain = await cache.get(None, False)
    zipped = await cache.get(None, True)
    openmetrics = await cache.get("application/openmetrics-text", False)
    assert render.calls == 3
    assert gzip.decompress(zipped[0]).startswith(b"render 2")
    assert plain[0].startswith(b"render 1")
    assert openmetrics[0].startswith(b"render 3")
    assert await cache.get(None, True) == zipped  # reused
    assert render.calls == 3


async def test_a_change_or_age_makes_a_new_render() -> None:
    render = SlowRender()
    version = [0]
    now = [100.0]
    cache = ExpositionCache(render, lambda: version[0], max_age=1.0, clock=lambda: now[0])
    first = await cache.get(None, False)
    assert await cache.get(None, False) == first
    version[0] += 1  # a suite's series changed
    second = await cache.get(None, False)
    assert second != first
    now[0] += 1.0  # nothing changed, but the process series have moved on
    assert await cache.get(None, False) != second
    assert render.calls == 3


async def test_a_render_started_after_the_request_came_is_reused_despite_changes() -> None:
    """A request that waited its turn takes a render that began after it came, changed or not."""
    render = SlowRender()
    version = [0]
    now = [100.0]
    cache = ExpositionCache(render, lambda: version[0], clock=lambda: now[0])
    came = now[0]
    now[0] += 0.1
    first = await cache.get(None, False)  # rendered at 100.1
    version[0] += 1
    assert await cache.get(None, False, received_at=came) == first
    assert await cache.get(None, False, received_at=now[0] + 0.05) != first
    assert render.calls == 2


async def test_a_failed_render_fails_its_waiters_and_the_next_request_retries() -> None:
    render = SlowRender(0.1)
    render.fail = True
    cache = ExpositionCache(render, lambda: 0)
    failures: list[BaseException] = []

    async def scrape() -> None:
        try:
            await cache.get(None, False)
        except (ValueError, RenderFailed) as exc:
            failures.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(scrape)
    assert (render.calls, len(failures)) == (1, 3)
    render.fail = False
    assert (await cache.get(None, False))[0].startswith(b"render 2")


async def test_bodies_are_dropped_after_max_age() -> None:
    cache = ExpositionCache(SlowRender(), lambda: 0, max_age=0.05)
    await cache.get(None, False)
    assert cache.entries
    await anyio.sleep(0.2)
    assert not cache.entries


@pytest.mark.slow
def test_fifty_concurrent_scrapes_over_http_cost_one_render() -> None:
    """Real sockets, real uvicorn: 50 gzip scrapes arriving together get the same bytes."""
    render = SlowRender(0.3)
    cache = ExpositionCache(render, lambda: 0)
    state = AgentState(
        render_metrics=cache.get,
        health=Health(intervals={}, started_at=time.time()),
        history=History(10),
        suites=[],
        trigger=lambda names: None,  # type: ignore[arg-type,return-value]
        admin_token=None,
    )
    with serving(create_app(state), Limits()) as port:
        start = threading.Barrier(50)

        def scrape(_: int) -> tuple[int, bytes]:
            with httpx.Client() as client:
                start.wait()
                with client.stream(
                    "GET", f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"}
                ) as answer:
                    return answer.status_code, b"".join(answer.iter_raw())

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(scrape, range(50)))
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert gzip.decompress(answers[0][1]).startswith(b"render 1\n")
    assert render.calls == 1
