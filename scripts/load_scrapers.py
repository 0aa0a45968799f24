"""Load the agent's HTTP server the way a busy monitoring stack does, and measure what it costs.

    python scripts/load_scrapers.py [--suites 200] [--tests 5] [--interval 10s]
                                    [--scrapers 50] [--pollers 6] [--seconds 60] [--json]

Starts a target (the demo API, a real HTTP server on 127.0.0.1) and the real agent
(``synthetic-exporter serve``) on ``--suites`` generated suites of ``--tests`` tests each (one
GET of the target per test). Once every suite has run, it measures one idle scrape of
``/metrics`` (the median of 10, gzip, one at a time, each a fresh render), the agent's RSS when
idle, then runs
``--scrapers`` gzip scrapers in closed loops and ``--pollers`` API pollers (each one request a
second, in turn /api/v1/results, /api/v1/runs?limit=50, /healthz, /) for ``--seconds``.
Prints /metrics p50/p99 under load against the idle scrape, errors, RSS idle and peak (sampled
every 0.2 s from /proc), and the p99 of the agent's own schedule lag during the load
(``synthetic_exporter_schedule_lag_seconds``, bucket-interpolated as histogram_quantile does).
Goals: 0 errors, p99 <= 5x idle, RSS peak <= 1.25x idle, schedule lag p99 <= 50 ms.
``make load`` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from servers import start, stop

LAG = "synthetic_exporter_schedule_lag_seconds"
BUCKET = re.compile(rf'^{LAG}_bucket{{[^}}]*le="([^"]+)"[^}}]*}} (\S+)$', re.M)
POLLED = ["/api/v1/results", "/api/v1/runs?limit=50", "/healthz", "/"]
GZIP = {"Accept-Encoding": "gzip"}
GZIP_LINE = "Accept-Encoding: gzip\r\n"

SUITE = """
from synthetic_exporter import Suite, T

suite = Suite("load_{n:03d}")
{tests}
"""
TEST = """

@suite.test
async def get_{i}(t: T) -> None:
    r = await t.http.get("/delay/0")
    assert r.status_code == 200
"""


@dataclass
class Figures:
    """What one load run measured."""

    suites: int
    tests: int
    interval: str
    concurrency: int
    scrapers: int
    pollers: int
    seconds: float
    idle_scrape_ms: float
    scrape_p50_ms: float
    scrape_p99_ms: float
    scrapes: int
    polls: int
    errors: int
    rss_idle_mib: float
    rss_peak_mib: float
    lag_p99_ms: float
    lag_mean_ms: float
    agent_cpu_cores: float
    error_samples: list[str] = field(default_factory=list)

    def goals(self) -> dict[str, bool]:
        """Return each goal and whether it was met."""
        return {
            "0 errors": self.errors == 0,
            "/metrics p99 <= 5x idle": self.scrape_p99_ms <= 5 * self.idle_scrape_ms,
            "RSS peak <= 1.25x idle": self.rss_peak_mib <= 1.25 * self.rss_idle_mib,
            "schedule lag p99 <= 50 ms": self.lag_p99_ms <= 50,
        }


def write_checks(directory: Path, suites: int, tests: int) -> None:
    """Write ``suites`` check files of ``tests`` tests each."""
    directory.mkdir(parents=True)
    for n in range(suites):
        body = SUITE.format(n=n, tests="".join(TEST.format(i=i) for i in range(tests)))
        (directory / f"load_{n:03d}.py").write_text(body, encoding="utf-8")


def rss_mib(pid: int) -> float:
    """Return a process's resident memory in MiB."""
    found = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else 0.0


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lag_buckets(exposition: str) -> dict[float, float]:
    """Return the schedule-lag histogram's cumulative buckets (le -> count)."""
    buckets = {}
    for match in re.finditer(
        rf'^{LAG}_bucket{{[^}}]*le="([^"]+)"[^}}]*}} (\S+)$', exposition, re.M
    ):
        buckets[float(match.group(1))] = float(match.group(2))
    return buckets


def lag_sum(exposition: str) -> float:
    found = re.search(rf"^{LAG}_sum(?:{{[^}}]*}})? (\S+)$", exposition, re.M)
    return float(found.group(1)) if found else 0.0


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """Return the q-quantile of the observations between two snapshots (histogram_quantile)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return 0.0
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


class RawScraper:
    """GET /metrics with gzip on one kept-alive connection, with as little client work as
    possible (raw asyncio streams: with httpx, this process would be the bottleneck)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer = reader, writer
        self.request = f"GET /metrics HTTP/1.1\r\nHost: {host}\r\n{GZIP_LINE}\r\n".encode()

    @classmethod
    async def open(cls, url: str) -> RawScraper:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, host)

    async def scrape(self) -> int:
        """Scrape once; return the body's size (ValueError unless the answer is a 200)."""
        self.writer.write(self.request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30)
        length = re.search(rb"content-length: (\d+)", head, re.I)
        if not head.startswith(b"HTTP/1.1 200 ") or length is None:
            raise ValueError(head[:40])
        await asyncio.wait_for(self.reader.readexactly(int(length.group(1))), 30)
        return int(length.group(1))

    def close(self) -> None:
        self.writer.close()


async def idle_scrapes(url: str, count: int) -> list[float]:
    """Return the times of ``count`` scrapes, one at a time, each rendering anew (the shared
    render is older than its 1 s maximum age by then)."""
    scraper = await RawScraper.open(url)
    times = []
    try:
        for _ in range(count):
            await asyncio.sleep(1.1)
            started = time.perf_counter()
            await scraper.scrape()
            times.append(time.perf_counter() - started)
    finally:
        scraper.close()
    return times


class Load:
    """Scrapers and pollers against one agent, with their latencies and errors."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.scrapes: list[float] = []
        self.polls = 0
        self.errors: list[str] = []
        self.stop = asyncio.Event()

    async def scraper(self) -> None:
        """Scrape in a closed loop on one kept-alive connection."""
        scraper = await RawScraper.open(self.url)
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    await scraper.scrape()
                except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    self.errors.append(f"/metrics {exc!r}")
                    return
                self.scrapes.append(time.perf_counter() - started)
        finally:
            scraper.close()

    async def poller(self, offset: int) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            n = offset
            while not self.stop.is_set():
                path = POLLED[n % len(POLLED)]
                n += 1
                try:
                    r = await client.get(f"{self.url}{path}", headers=GZIP)
                    if r.status_code not in (200, 503):  # /healthz is 503 while a check fails
                        self.errors.append(f"{path} {r.status_code}")
                except httpx.HTTPError as exc:
                    self.errors.append(f"{path} {exc!r}")
                self.polls += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), 1.0)

    async def run(self, scrapers: int, pollers: int, seconds: float) -> None:
        tasks = [asyncio.create_task(self.scraper()) for _ in range(scrapers)]
        tasks += [asyncio.create_task(self.poller(i)) for i in range(pollers)]
        await asyncio.sleep(seconds)
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)


def sample_rss(pid: int, stop: threading.Event, peaks: list[float]) -> None:
    while not stop.wait(0.2):
        peaks.append(rss_mib(pid))


def wait_for_first_runs(url: str, seconds: float) -> None:
    """Wait (bounded) until /healthz has a status for every suite other than pending."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/healthz", timeout=10).json()
        if "pending" not in body["suites"].values():
            return
        time.sleep(0.5)
    raise RuntimeError("the suites did not all run in time")


def measure(args: argparse.Namespace, work: Path) -> Figures:
    checks = work / "checks"
    write_checks(checks, args.suites, args.tests)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    demo, api = start(
        [sys.executable, "-m", "synthetic_exporter.demo", "--host", "127.0.0.1", "--port", "0"],
        work / "demo.log",
        base,
    )
    agent_env = {
        **base,
        "SYNTHETIC_STATE_DIR": str(work / "state"),
        "SYNTHETIC_LISTEN": "127.0.0.1:0",
        "SYNTHETIC_INTERVAL": args.interval,
        "SYNTHETIC_CONCURRENCY": str(args.concurrency),
        "SYNTHETIC_TARGETS__DEFAULT__BASE_URL": api,
        "SYNTHETIC_LOG_FORMAT": "json",
    }
    agent = None
    try:
        cmd = [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "serve"]
        agent, url = start(cmd, work / "agent.log", agent_env)
        wait_for_first_runs(url, 120)
        idle = asyncio.run(idle_scrapes(url, 10))
        with httpx.Client(timeout=30, headers=GZIP) as client:
            time.sleep(2)
            rss_idle = statistics.median(rss_mib(agent.pid) for _ in range(5))
            before = client.get(f"{url}/metrics").text
        peaks: list[float] = []
        stop_sampling = threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(agent.pid, stop_sampling, peaks))
        sampler.start()
        load = Load(url)
        cpu_before = cpu_seconds(agent.pid)
        try:
            asyncio.run(load.run(args.scrapers, args.pollers, args.seconds))
        finally:
            agent_cpu = (cpu_seconds(agent.pid) - cpu_before) / args.seconds
            stop_sampling.set()
            sampler.join()
        after = httpx.get(f"{url}/metrics", timeout=30).text
        observed = lag_buckets(after).get(float("inf"), 0) - lag_buckets(before).get(
            float("inf"), 0
        )
        scrapes = sorted(load.scrapes) or [0.0]
        return Figures(
            suites=args.suites,
            tests=args.tests,
            interval=args.interval,
            concurrency=args.concurrency,
            scrapers=args.scrapers,
            pollers=args.pollers,
            seconds=args.seconds,
            idle_scrape_ms=round(statistics.median(idle) * 1000, 1),
            scrape_p50_ms=round(statistics.median(scrapes) * 1000, 1),
            scrape_p99_ms=round(scrapes[int(0.99 * (len(scrapes) - 1))] * 1000, 1),
            scrapes=len(scrapes),
            polls=load.polls,
            errors=len(load.errors),
            rss_idle_mib=round(rss_idle, 1),
            rss_peak_mib=round(max(peaks, default=0.0), 1),
            lag_p99_ms=round(quantile(0.99, lag_buckets(before), lag_buckets(after)) * 1000, 1),
            lag_mean_ms=round((lag_sum(after) - lag_sum(before)) / max(observed, 1) * 1000, 1),
            agent_cpu_cores=round(agent_cpu, 2),
            error_samples=sorted(set(load.errors))[:5],
        )
    finally:
        if agent is not None:
            stop(agent)
        stop(demo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suites", type=int, default=200)
    parser.add_argument("--tests", type=int, default=5)
    parser.add_argument("--interval", default="10s", help="every suite's interval")
    parser.add_argument(
        "--concurrency", type=int, default=50, help="suites run at once (SYNTHETIC_CONCURRENCY)"
    )
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--pollers", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="load-scrapers-") as tmp:
        figures = measure(args, Path(tmp))
    goals = figures.goals()
    if args.json:
        print(json.dumps({**asdict(figures), "goals": goals}, indent=2))
    else:
        f = figures
        print(f"{f.suites} suites x {f.tests} tests every {f.interval}; {f.scrapers} gzip")
        print(f"scrapers and {f.pollers} API pollers for {f.seconds:.0f} s")
        print(f"/metrics idle {f.idle_scrape_ms} ms; under load p50 {f.scrape_p50_ms} ms,")
        print(f"  p99 {f.scrape_p99_ms} ms ({f.scrapes} scrapes, {f.polls} polls)")
        print(f"errors {f.errors} {f.error_samples}")
        print(f"RSS idle {f.rss_idle_mib} MiB, peak {f.rss_peak_mib} MiB")
        print(f"agent CPU during the load: {f.agent_cpu_cores} cores")
        print(f"schedule lag during the load: p99 {f.lag_p99_ms} ms, mean {f.lag_mean_ms} ms")
        for goal, met in goals.items():
            print(f"  {'met' if met else 'NOT met'}: {goal}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
