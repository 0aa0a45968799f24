"""How honest are the phases through a proxy? Sum of phases vs the test's duration, measured.

Starts tinyproxy and an https server (a ``trustme`` certificate for localhost) on 127.0.0.1,
then runs a one-request test N times in-process with ``fresh_connections`` (every run opens
its own tunnel: proxy, TLS, processing, transfer), through the proxy (on the agent's HTTP/1.1
transport, and with ``http2`` on httpcore's, ALPN settling on HTTP/1.1 with this server) and,
for comparison, direct. Prints, per mode, the p50 and p95 of the test's duration minus the
sum of its request's phases, of the request's duration minus that sum, and the p50 of each
phase. docs/http-checks.md ("Through a proxy") records a run.

Usage: ``.venv/bin/python scripts/proxy_phases.py [--runs 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import socket
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import trustme

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import TestResult
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.wiring import KeepingFanout, open_engine


class Handler(http.server.BaseHTTPRequestHandler):
    """A small answer at once (no Nagle delay between the head and the body)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        body = b"x" * 2_000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Stay quiet."""


class Recorder(KeepingFanout):
    """Keeps every test result."""

    def __init__(self) -> None:
        super().__init__()
        self.tests: list[TestResult] = []

    def test_finished(self, result: TestResult) -> None:
        self.tests.append(result)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_tinyproxy(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = directory / "tinyproxy.conf"
    config.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 10\nMaxClients 50\nLogLevel Warning\n"
        "Allow 127.0.0.1\nDisableViaHeader Yes\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        ["tinyproxy", "-d", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("tinyproxy did not start")


def one_request_suite() -> Suite:
    suite = Suite("fetch")

    @suite.test
    async def get(t: T) -> None:
        r = await t.http.get("/")
        assert r.status_code == 200

    return suite


async def measure(settings: Settings, runs: int) -> list[TestResult]:
    suites = {"fetch": one_request_suite()}
    recorder = Recorder()
    async with open_engine(settings, suites) as engine:
        coordinator = Coordinator(
            engine=engine, suites=suites, listener=recorder, concurrency=settings.concurrency
        )
        for _ in range(runs):
            await coordinator.run_batch(["fetch"])
    return recorder.tests


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def report(name: str, results: list[TestResult]) -> None:
    failed = [r for r in results if r.outcome != "passed"]
    if failed:
        raise SystemExit(f"{name}: {len(failed)} runs did not pass: {failed[0].message}")
    requests = [r.requests[0] for r in results]
    pairs = zip(results, requests, strict=True)
    test_gap = [r.duration_seconds - sum(q.phases.values()) for r, q in pairs]
    request_gap = [q.duration_seconds - sum(q.phases.values()) for q in requests]
    quantiles = statistics.quantiles
    print(f"{name} ({len(results)} runs, fresh connections)")
    print(
        f"  test duration - sum of phases:    p50 {ms(statistics.median(test_gap))},"
        f" p95 {ms(quantiles(test_gap, n=20)[-1])}"
    )
    print(
        f"  request duration - sum of phases: p50 {ms(statistics.median(request_gap))},"
        f" p95 {ms(quantiles(request_gap, n=20)[-1])}"
    )
    phases = sorted({p for q in requests for p in q.phases})
    medians = {p: statistics.median(q.phases.get(p, 0.0) for q in requests) for p in phases}
    print("  phases p50: " + ", ".join(f"{p} {ms(s)}" for p, s in medians.items()))
    print(f"  test duration p50: {ms(statistics.median(r.duration_seconds for r in results))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"https://localhost:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        bundle = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        proxy, proxy_url = start_tinyproxy(directory)
        try:
            modes: tuple[tuple[str, dict[str, object]], ...] = (
                ("through the proxy", {"proxy_url": proxy_url}),
                ("through the proxy, HTTP2 (httpcore)", {"proxy_url": proxy_url, "http2": True}),
                ("direct", {}),
            )
            for name, options in modes:
                target = TargetSettings(
                    base_url=base_url, ca_bundle=bundle, fresh_connections=True, **options
                )
                settings = Settings(state_dir=directory / name, targets={"default": target})
                report(name, asyncio.run(measure(settings, args.runs)))
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
