"""A real Prometheus stores the agent's exemplars, and they lead to the agent's runs and traces.

Prometheus (``--enable-feature=exemplar-storage``, scraping OpenMetrics as it asks for by
default) scrapes a real agent whose check calls a real server on 127.0.0.1 that records each
request's ``traceparent``.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from synthetic_exporter.http.tracecontext import parse as parse_traceparent
from tests.conftest import Server, start_agent, stop_process, write_checks
from tests.prometheus import Prometheus, start_prometheus

CHECKS = {
    "traced.py": """
        from synthetic_exporter import Suite, T

        suite = Suite("traced")

        @suite.test
        async def fetch(t: T) -> None:
            response = await t.http.get("/hello")
            assert response.status_code == 200
        """
}
DEADLINE_SECONDS = 45
PHASE_BUCKETS = "synthetic_http_request_duration_seconds_bucket"


class Recording(http.server.BaseHTTPRequestHandler):
    """Answers 200 to any GET and keeps each request's ``traceparent`` header."""

    protocol_version = "HTTP/1.1"
    traceparents: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.traceparents.append(self.headers.get("traceparent", ""))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        """Stay quiet."""


@pytest.fixture
def target() -> Iterator[str]:
    """A recording server on a free port of 127.0.0.1; its URL."""
    Recording.traceparents.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def query_exemplars(prometheus: Prometheus, query: str) -> list[dict[str, str]]:
    """Return the labels of every exemplar Prometheus stored for ``query`` in the last minute."""
    now = time.time()
    r = httpx.get(
        f"{prometheus.url}/api/v1/query_exemplars",
        params={"query": query, "start": now - 60, "end": now + 1},
        timeout=10,
    )
    r.raise_for_status()
    return [e["labels"] for series in r.json()["data"] for e in series["exemplars"]]


def note_runs(agent: Server, runs: dict[str, dict[str, Any]]) -> None:
    """Add the agent's latest results to ``runs`` (run id -> suite result)."""
    body = httpx.get(f"{agent.url}/api/v1/results", timeout=10).json()
    for suite in body["suites"]:
        runs[suite["run_id"]] = suite


@pytest.mark.slow
def test_an_exemplar_on_a_requests_phase_leads_to_its_run_and_trace(
    tmp_path: Path, target: str
) -> None:
    checks = write_checks(tmp_path / "checks", CHECKS)
    agent = start_agent(checks, tmp_path / "state", target, SYNTHETIC_INTERVAL="1s")
    prometheus: Prometheus | None = None
    try:
        prometheus = start_prometheus(
            tmp_path / "prometheus",
            [agent.url.removeprefix("http://")],
            features=["exemplar-storage"],
        )
        runs: dict[str, dict[str, Any]] = {}
        matched: list[dict[str, str]] = []
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not matched and time.monotonic() < deadline:
            note_runs(agent, runs)
            exemplars = query_exemplars(prometheus, PHASE_BUCKETS)
            matched = [e for e in exemplars if e.get("run_id") in runs]
            time.sleep(0.25)
        assert matched, f"no exemplar named a run the agent reported: {runs.keys()}"
        for exemplar in matched:
            (test,) = runs[exemplar["run_id"]]["tests"]
            assert test["name"] == "fetch"
            assert exemplar["trace_id"] == test["trace_id"]
            # The target saw that trace, on the request the test recorded.
            (request,) = test["requests"]
            sent = f"00-{test['trace_id']}-{request['span_id']}-01"
            assert sent in Recording.traceparents
        # The exemplar's run id leads to that run's page, which names the test and its trace.
        run_page = httpx.get(f"{agent.url}/runs/{matched[0]['run_id']}", timeout=10)
        assert run_page.status_code == 200
        assert matched[0]["trace_id"] in run_page.text
        # Every request the target saw was traced, each with a span of its own.
        parsed = [parse_traceparent(header) for header in Recording.traceparents]
        assert all(p is not None for p in parsed), Recording.traceparents
        assert len({p.span_id for p in parsed if p is not None}) == len(parsed)
    finally:
        if prometheus is not None:
            prometheus.stop()
        stop_process(agent.process)
