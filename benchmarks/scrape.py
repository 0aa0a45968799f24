"""Scrape: what ``/metrics`` costs, and what scraping does to the latency tests measure.

Render: the agent's exposition (``synthetic_exporter.exporter.metrics.render`` on the registry,
or the cached ``Metrics.render`` where the agent has one) of metrics filled through
``Metrics.suite_finished`` with synthetic results, against a plain prometheus_client registry
of the same series count (:mod:`benchmarks.baseline`), alternating, in the agent process.
Interference: the agent's own app (``server.create_app``, uvicorn as ``serve`` runs it) serves
a registry of about 10,000 series while 10 checks (10 ms server delay) run in closed loops;
rounds cycle through: no scraping, a harness scraping ``/metrics`` back to back (asking for
gzip, as Prometheus does), and two
what-ifs: scraping pre-rendered bytes (a cached exposition) and scraping ``/metrics`` with the
GIL switch interval at 0.1 ms instead of the 0.5 ms that ``serve`` sets.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks import rawhttp
from benchmarks.lab import Lab
from benchmarks.stats import Dist

INTERFERENCE_INFLIGHT = 10
INTERFERENCE_DELAY_MS = 10
MAX_SCRAPES = 100_000


@dataclass
class Render:
    series: int
    baseline_series: int
    bytes: int
    agent_ms: Dist
    cold_ms: Dist
    baseline_ms: Dist
    openmetrics_ms: Dist
    cached_join_ms: float


NOT_SCRAPED = "not scraped"
SCRAPED = "scraped continuously"
CACHED = "what-if: scraped, cached exposition"
SWITCH = "what-if: scraped, GIL switch interval 0.1 ms"
MODES = (NOT_SCRAPED, SCRAPED, CACHED, SWITCH)
SWITCH_SECONDS = 0.0001
# As Prometheus asks (it also sends Accept and a timeout header, which change nothing here).
SCRAPE_HEADERS = {"Accept-Encoding": "gzip"}


@dataclass
class Scrape:
    renders: dict[int, Render] = field(default_factory=dict)
    one_suite_series: int = 0
    one_suite_render_ms: Dist = field(default_factory=lambda: Dist.of([]))
    served_series: int = 0
    # mode -> added latency (ms) of the checks in flight
    added_ms: dict[str, Dist] = field(default_factory=dict)
    # mode -> HTTP latency of the scrapes (ms)
    scrape_ms: dict[str, Dist] = field(default_factory=dict)
    scrape_bytes: int = 0


async def _scrape_forever(
    url: str, path: str, stop: asyncio.Event, times: list[float], size: list[int]
) -> None:
    host, port, _ = rawhttp.split_url(url)
    connection = rawhttp.Connection(host, port)
    try:
        while not stop.is_set() and len(times) < MAX_SCRAPES:
            start = time.perf_counter()
            response = await connection.get(path, SCRAPE_HEADERS)
            times.append(time.perf_counter() - start)
            body = response.body
            if response.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            size[0] = len(body)
    finally:
        await connection.close()


async def _renders(lab: Lab, result: Scrape) -> None:
    plan = lab.plan
    answer = await lab.agent.call(
        "render", limit=900, sizes=list(plan.render_sizes), reps=list(plan.render_reps)
    )
    one = answer.pop("one_suite")
    result.one_suite_series = int(one["series"])
    result.one_suite_render_ms = Dist.from_json(one["render"]).scaled(1000)
    for size, data in answer.items():
        result.renders[int(size)] = Render(
            int(data["series"]),
            int(data["baseline_series"]),
            int(data["bytes"]),
            Dist.from_json(data["agent"]).scaled(1000),
            Dist.from_json(data["cold"]).scaled(1000),
            Dist.from_json(data["baseline"]).scaled(1000),
            Dist.from_json(data["openmetrics"]).scaled(1000),
            float(data["cached_join"]) * 1000,
        )


async def _round(
    lab: Lab, url: str, mode: str, scrapes: list[float], size: list[int]
) -> list[float]:
    """Run the checks for one round in ``mode``; return their added latency (ms)."""
    plan = lab.plan
    stop = asyncio.Event()
    scraper = None
    previous = None
    if mode == SWITCH:
        previous = (await lab.agent.call("switch_interval", limit=10, seconds=SWITCH_SECONDS))[
            "previous"
        ]
    if mode != NOT_SCRAPED:
        path = "/metrics-cached" if mode == CACHED else "/metrics"
        scraper = asyncio.create_task(_scrape_forever(url, path, stop, scrapes, size))
        await asyncio.sleep(0.2)  # scraping is under way when the checks start
    try:
        samples: list[dict[str, Any]] = (
            await lab.agent.call(
                "interference",
                limit=plan.interference_seconds + 120,
                seconds=plan.interference_seconds,
                delay_ms=INTERFERENCE_DELAY_MS,
            )
        )["samples"]
    finally:
        stop.set()
        if scraper is not None:
            await asyncio.wait_for(scraper, 60)
        if previous is not None:
            await lab.agent.call("switch_interval", limit=10, seconds=previous)
    held = await lab.held([s["id"] for s in samples])
    return [
        (float(s["test"]) - held[s["id"]]) * 1000 for s in samples if s["ok"] and s["id"] in held
    ]


async def measure_scrape(lab: Lab) -> Scrape:
    """Time renders, then measure checks in flight with and without continuous scraping."""
    plan = lab.plan
    result = Scrape()
    await _renders(lab, result)
    served = await lab.agent.call(
        "serve_metrics",
        limit=300,
        series=plan.scrape_series,
        kind="agent-pooled",
        inflight=INTERFERENCE_INFLIGHT,
    )
    result.served_series = int(served["series"])
    added: dict[str, list[float]] = {mode: [] for mode in MODES}
    scrapes: dict[str, list[float]] = {mode: [] for mode in MODES}
    size_box = [0]
    try:
        for r in range(plan.interference_rounds):
            mode = MODES[r % len(MODES)]
            size = size_box if mode == SCRAPED else [0]
            added[mode] += await _round(lab, served["url"], mode, scrapes[mode], size)
    finally:
        await lab.agent.call("stop_metrics", limit=30)
    result.added_ms = {mode: Dist.of(values) for mode, values in added.items()}
    result.scrape_ms = {mode: Dist.of(t).scaled(1000) for mode, t in scrapes.items() if t}
    result.scrape_bytes = size_box[0]
    return result
