"""OTLP/HTTP export of the checks' spans, received by a real OTLP/HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import Resource

from synthetic_exporter.app.startup_checks import StartupError, check_otlp_endpoint
from synthetic_exporter.core.results import Outcome, RequestRecord, SuiteResult, TestResult
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.exporter.otlp import OtlpExporter, SpanBuilder, otlp_listener
from tests.conftest import start_agent, stop_process, wait_for_health, write_checks

SettingsFor = Callable[..., Settings]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_IDS = ("00f067aa0ba902b7", "b7ad6b7169203331")


def attributes_of(values: Any) -> dict[str, Any]:
    """Return OTLP ``KeyValue``s as a plain dict."""
    found: dict[str, Any] = {}
    for kv in values:
        assert isinstance(kv, KeyValue)
        kind = kv.value.WhichOneof("value")
        assert kind is not None
        found[kv.key] = getattr(kv.value, kind)
    return found


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it, with its resource's attributes."""

    span: Span
    resource: dict[str, Any]

    @property
    def attributes(self) -> dict[str, Any]:
        """Return the span's attributes."""
        return attributes_of(self.span.attributes)


@dataclass
class Receiver:
    """A real OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf bodies, spans recorded."""

    status: int = 200
    delay: float = 0.0
    payloads: list[bytes] = field(default_factory=list)
    spans: list[ReceivedSpan] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        """Return the traces endpoint."""
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def record(self, content_type: str, body: bytes) -> None:
        """Decode and keep one export request."""
        self.content_types.append(content_type)
        self.payloads.append(body)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = attributes_of(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(ReceivedSpan(s, resource) for s in scope_spans.spans)

    def wait_for_spans(self, count: int, seconds: float = 10.0) -> list[ReceivedSpan]:
        """Wait (bounded) until ``count`` spans arrived; return them."""
        deadline = time.monotonic() + seconds
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.spans) >= count, f"{len(self.spans)} spans arrived, not {count}"
        return list(self.spans)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Run a receiver on 127.0.0.1 in a thread for one test."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            time.sleep(state.delay)
            if state.status == 200:
                state.record(self.headers.get("Content-Type", ""), body)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def request(span_id: str, path: str, status: int | None, **fields: Any) -> RequestRecord:
    """Return a request record of the default target that started at t=1000.1."""
    values: dict[str, Any] = {
        "target": "default",
        "method": "GET",
        "path": path,
        "status": status,
        "duration_seconds": 0.25,
        "phases": {"connect": 0.01, "processing": 0.2},
        "started_at": 1000.1,
        "span_id": span_id,
    }
    values.update(fields)
    return RequestRecord(**values)


def make_test(name: str, outcome: Outcome, **fields: Any) -> TestResult:
    """Return a test result of suite ``shop`` from t=1000 to t=1001."""
    values: dict[str, Any] = {
        "suite": "shop",
        "name": name,
        "outcome": outcome,
        "duration_seconds": 1.0,
        "started_at": 1000.0,
        "ended_at": 1001.0,
    }
    values.update(fields)
    return TestResult(**values)


def suite_result(*tests: TestResult) -> SuiteResult:
    """Return a run of suite ``shop`` with these tests."""
    return SuiteResult(
        suite="shop",
        run_id="run-42",
        outcome=Outcome.FAILED,
        tests=tests,
        started_at=1000.0,
        ended_at=1001.0,
        duration_seconds=1.0,
        scheduled_at=1000.0,
    )


def checkout_run() -> SuiteResult:
    """Return a run with a failed test of two requests and a skipped test."""
    failed = make_test(
        "checkout",
        Outcome.FAILED,
        message="AssertionError: assert 500 == 200\nmore detail",
        trace_id=TRACE_ID,
        requests=(
            request(
                SPAN_IDS[0],
                "/cart",
                200,
                cache="hit",
                pop="FRA56",
                remote_address="2600:9000:2001::1",
                ip_family=6,
            ),
            request(SPAN_IDS[1], "/orders", 500, method="POST", started_at=1000.4),
        ),
    )
    return suite_result(failed, make_test("refund", Outcome.SKIPPED))


@pytest.fixture
def export_to(settings_for: SettingsFor) -> Iterator[Callable[..., OtlpExporter]]:
    """Return a factory of exporters to an endpoint; close them after the test."""
    made: list[OtlpExporter] = []

    def make(endpoint: str) -> OtlpExporter:
        settings = settings_for(
            "https://shop.example.com:8443/api", otlp_endpoint=endpoint, environment="staging"
        )
        exporter = otlp_listener(settings)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.close(timeout=2)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """Collect the agent's WARNING (and higher) log lines."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{message}")
    yield lines
    logger.remove(sink)


def by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    """Index spans by name (unique in these tests)."""
    return {s.span.name: s for s in spans}


def test_the_builder_takes_the_ids_from_the_results_and_hangs_subtests_under_their_test() -> None:
    parent = make_test("checkout", Outcome.PASSED, trace_id=TRACE_ID)
    sub = make_test(
        "checkout/eu", Outcome.PASSED, trace_id=TRACE_ID, requests=(request(SPAN_IDS[0], "/", 200),)
    )
    other = make_test("browse", Outcome.PASSED, trace_id="0af7651916cd43dd8448eb211c80319c")
    spans = SpanBuilder(Resource.create({})).spans(suite_result(sub, parent, other))

    named = {s.name: s for s in spans}
    assert set(named) == {"shop/checkout", "shop/checkout/eu", "GET", "shop/browse"}
    test, subtest, get = named["shop/checkout"], named["shop/checkout/eu"], named["GET"]
    assert test.context is not None
    assert subtest.context is not None
    assert get.context is not None
    assert test.parent is None
    assert subtest.parent == test.context
    assert get.parent == subtest.context
    assert f"{get.context.trace_id:032x}" == TRACE_ID
    assert f"{get.context.span_id:016x}" == SPAN_IDS[0]
    assert named["shop/browse"].parent is None  # its own trace


@pytest.mark.slow
def test_a_test_run_is_one_trace_whose_request_spans_carry_the_traceparent_ids(
    receiver: Receiver, export_to: Callable[..., OtlpExporter]
) -> None:
    exporter = export_to(receiver.url)
    exporter.suite_finished(checkout_run())
    exporter.close()

    spans = by_name(receiver.wait_for_spans(3))
    assert set(spans) == {"shop/checkout", "GET", "POST"}  # the skipped test has none
    root, get, post = spans["shop/checkout"].span, spans["GET"].span, spans["POST"].span
    assert {s.trace_id.hex() for s in (root, get, post)} == {TRACE_ID}
    assert (get.span_id.hex(), post.span_id.hex()) == SPAN_IDS
    assert root.span_id.hex() not in SPAN_IDS
    assert root.parent_span_id == b""
    assert get.parent_span_id == root.span_id == post.parent_span_id
    assert root.kind == Span.SPAN_KIND_INTERNAL
    assert get.kind == post.kind == Span.SPAN_KIND_CLIENT
    assert (root.start_time_unix_nano, root.end_time_unix_nano) == (1000 * 10**9, 1001 * 10**9)
    assert get.start_time_unix_nano == pytest.approx(1000.1e9, abs=1000)
    assert get.end_time_unix_nano - get.start_time_unix_nano == pytest.approx(0.25e9, abs=1000)
    assert post.start_time_unix_nano == pytest.approx(1000.4e9, abs=1000)
    assert receiver.content_types == ["application/x-protobuf"]


@pytest.mark.slow
def test_spans_carry_semantic_convention_and_synthetic_attributes(
    receiver: Receiver, export_to: Callable[..., OtlpExporter]
) -> None:
    exporter = export_to(receiver.url)
    exporter.suite_finished(checkout_run())
    exporter.close()

    spans = by_name(receiver.wait_for_spans(3))
    root, get, post = spans["shop/checkout"], spans["GET"], spans["POST"]
    assert root.attributes == {
        "synthetic.suite": "shop",
        "synthetic.test": "checkout",
        "synthetic.outcome": "failed",
        "synthetic.run_id": "run-42",
        "synthetic.attempts": 1,
        "error.type": "failed",
    }
    assert root.span.status.code == Status.STATUS_CODE_ERROR
    assert root.span.status.message == "AssertionError: assert 500 == 200"
    assert get.attributes == {
        "http.request.method": "GET",
        "url.path": "/cart",
        "http.response.status_code": 200,
        "server.address": "shop.example.com",
        "server.port": 8443,
        "network.peer.address": "2600:9000:2001::1",
        "network.type": "ipv6",
        "synthetic.target": "default",
        "synthetic.cache": "hit",
        "synthetic.pop": "FRA56",
        "synthetic.phase.connect.duration": 0.01,
        "synthetic.phase.processing.duration": 0.2,
    }
    assert get.span.status.code == Status.STATUS_CODE_UNSET
    assert post.attributes["error.type"] == "500"
    assert "network.peer.address" not in post.attributes  # no address recorded
    assert post.span.status.code == Status.STATUS_CODE_ERROR
    assert root.resource["service.name"] == "synthetic-exporter"
    assert root.resource["deployment.environment.name"] == "staging"
    assert root.resource["service.version"]


@pytest.mark.slow
def test_a_passed_test_is_ok_and_a_failed_request_names_its_exception(
    receiver: Receiver, export_to: Callable[..., OtlpExporter]
) -> None:
    refused = request("", "/health", None, error="ConnectError: [Errno 111] refused")
    passed = make_test("health", Outcome.PASSED, requests=(refused,))
    exporter = export_to(receiver.url)
    exporter.suite_finished(suite_result(passed))
    exporter.close()

    spans = by_name(receiver.wait_for_spans(2))
    root, get = spans["shop/health"].span, spans["GET"]
    assert root.status.code == Status.STATUS_CODE_OK
    assert "error.type" not in attributes_of(root.attributes)
    # No ids in the result (no traceparent sent): random valid ones, still one trace.
    assert len(root.trace_id) == 16
    assert any(root.trace_id)
    assert get.span.trace_id == root.trace_id
    assert len(get.span.span_id) == 8
    assert any(get.span.span_id)
    assert get.attributes["error.type"] == "ConnectError"
    assert "http.response.status_code" not in get.attributes
    assert get.span.status.message == "ConnectError"  # never the exception's text


@pytest.mark.slow
def test_a_run_of_skipped_tests_sends_nothing(
    receiver: Receiver, export_to: Callable[..., OtlpExporter]
) -> None:
    exporter = export_to(receiver.url)
    exporter.suite_finished(suite_result(make_test("refund", Outcome.SKIPPED)))
    exporter.close()
    assert receiver.payloads == []
    assert (exporter.exported_spans, exporter.dropped_spans) == (0, 0)


@pytest.mark.slow
async def test_no_secret_reaches_the_exported_payload(
    receiver: Receiver,
    export_to: Callable[..., OtlpExporter],
    settings_for: SettingsFor,
    demo_api: str,
) -> None:
    from synthetic_exporter.authoring.context import T
    from synthetic_exporter.authoring.suite import Suite
    from tests.engine_helpers import run_suites

    secret = "sk-otlp-very-secret"
    suite = Suite("secretive")

    @suite.test
    async def leaks(t: T) -> None:
        token = t.secret("api_key")
        client = t.client("default")
        await client.get(f"/items/{token}", params={"key": token}, headers={"X-Key": token})
        t.log(f"using {token}")
        raise AssertionError(f"rejected {token}")

    settings = settings_for(demo_api, secrets={"api_key": secret})
    (run,) = (await run_suites(settings, [suite])).suites
    assert run.tests[0].requests, "the check made no request"
    exporter = export_to(receiver.url)
    exporter.suite_finished(run)
    exporter.close()

    receiver.wait_for_spans(2)
    payload = b"".join(receiver.payloads)
    assert b"/items/" in payload
    assert secret.encode() not in payload
    assert b"sk-otlp" not in payload


@pytest.mark.slow
def test_a_collector_answering_500_neither_blocks_nor_stops_the_agent(
    receiver: Receiver, export_to: Callable[..., OtlpExporter], warnings: list[str]
) -> None:
    receiver.status = 500
    exporter = export_to(receiver.url)
    started = time.perf_counter()
    for _ in range(20):
        exporter.suite_finished(checkout_run())
    assert time.perf_counter() - started < 0.5  # queued, not sent, on the caller's thread
    exporter.close()

    assert exporter.dropped_spans == 20 * 3
    assert exporter.exported_spans == 0
    failures = [w for w in warnings if "failed" in w]
    assert len(failures) == 1, warnings  # one warning per outage, not per batch
    assert receiver.url in failures[0]

    receiver.status = 200  # the collector is back: a new exporter's spans go through
    again = export_to(receiver.url)
    again.suite_finished(checkout_run())
    again.close()
    assert again.exported_spans == 3


@pytest.mark.slow
def test_a_collector_that_is_down_drops_spans_and_close_is_bounded(
    export_to: Callable[..., OtlpExporter], warnings: list[str]
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}/v1/traces"
    exporter = export_to(down)
    started = time.perf_counter()
    exporter.suite_finished(checkout_run())
    assert time.perf_counter() - started < 0.1
    deadline = time.monotonic() + 15
    while exporter.dropped_spans < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exporter.dropped_spans == 3
    started = time.perf_counter()
    exporter.close(timeout=2)
    assert time.perf_counter() - started < 4
    assert any(down in w for w in warnings)


@pytest.mark.slow
def test_a_slow_collector_fills_the_queue_and_later_runs_are_dropped(
    receiver: Receiver, warnings: list[str]
) -> None:
    receiver.delay = 1.0
    sender = OTLPSpanExporter(endpoint=receiver.url, timeout=5)
    builder = SpanBuilder(Resource.create({}))
    slow = OtlpExporter(builder, sender, endpoint=receiver.url, queue_size=2)
    try:
        started = time.perf_counter()
        for _ in range(10):
            slow.suite_finished(checkout_run())
        assert time.perf_counter() - started < 0.2
        # Two runs wait, up to two more may be in the batch being sent: the rest are dropped.
        assert slow.dropped_spans in (6 * 3, 7 * 3, 8 * 3)
        assert any("behind" in w for w in warnings)
    finally:
        slow.close(timeout=5)
    assert slow.exported_spans + slow.dropped_spans == 10 * 3
    assert len(receiver.spans) == slow.exported_spans


def test_the_endpoint_check_refuses_a_malformed_url_and_a_missing_extra(
    settings_for: SettingsFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_otlp_endpoint(settings_for())  # unset: nothing to check
    check_otlp_endpoint(settings_for(otlp_endpoint=" "))  # empty (the chart's default): the same
    check_otlp_endpoint(settings_for(otlp_endpoint="http://collector:4318/v1/traces"))
    for bad in ("collector:4318", "ftp://collector/v1/traces", "http:///v1/traces"):
        with pytest.raises(StartupError) as caught:
            check_otlp_endpoint(settings_for(otlp_endpoint=bad))
        assert caught.value.variable == "SYNTHETIC_OTLP_ENDPOINT"

    # An import of a module set to None in sys.modules raises ImportError: the extra is missing.
    module = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(StartupError) as caught:
        check_otlp_endpoint(settings_for(otlp_endpoint="http://collector:4318/v1/traces"))
    assert "pip install 'synthetic-exporter[otlp]'" in str(caught.value)


E2E_CHECKS = """
from synthetic_exporter import Suite, T

shop = Suite("shop")


@shop.test
async def browse(t: T) -> None:
    assert (await t.http.get("/delay/5")).status_code == 200
    assert (await t.http.get("/delay/1")).status_code == 200
"""


@pytest.mark.slow
def test_an_agent_exports_its_test_runs_to_a_real_receiver(
    tmp_path: Path, receiver: Receiver, demo_api: str
) -> None:
    checks = write_checks(tmp_path / "checks", {"shop.py": E2E_CHECKS})
    agent = start_agent(
        checks,
        tmp_path / "state",
        demo_api,
        SYNTHETIC_INTERVAL="1h",
        SYNTHETIC_ENVIRONMENT="e2e",
        SYNTHETIC_OTLP_ENDPOINT=receiver.url,
    )
    try:
        wait_for_health(agent.url, 200)
        deadline = time.monotonic() + 30
        suites: list[dict[str, Any]] = []
        while not suites and time.monotonic() < deadline:
            suites = httpx.get(f"{agent.url}/api/v1/results", timeout=5).json()["suites"]
            time.sleep(0.1)
        (suite,) = suites
        (test,) = suite["tests"]
        receiver.wait_for_spans(3)
    finally:
        stop_process(agent.process)
    assert agent.process.returncode == 0

    trace = [s for s in receiver.spans if s.span.trace_id.hex() == test["trace_id"]]
    root = next(s for s in trace if s.span.name == "shop/browse")
    assert root.attributes["synthetic.run_id"] == suite["run_id"]
    assert root.attributes["synthetic.outcome"] == "passed"
    assert root.resource["deployment.environment.name"] == "e2e"
    requests = [s for s in trace if s.span.kind == Span.SPAN_KIND_CLIENT]
    assert [s.span.span_id.hex() for s in requests] == [r["span_id"] for r in test["requests"]]
    assert all(s.span.parent_span_id == root.span.span_id for s in requests)
    assert [s.attributes["url.path"] for s in requests] == ["/delay/5", "/delay/1"]
    assert {s.attributes["server.address"] for s in requests} == {"127.0.0.1"}
