"""Instrumented HTTP against real servers on 127.0.0.1: phases, TLS, fresh connections."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import Outcome, RequestRecord, TestResult
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.http.tracecontext import parse as parse_traceparent
from tests.engine_helpers import by_name, run_suites
from tests.http.edge_site import EdgeHandler, Site, serving

SettingsFor = Callable[..., Settings]
# Phases add up to the request's duration but for the transport's own work before the request
# is sent and after its body arrived: about 0.2 to 0.5 ms on an idle machine (docs/http-checks.md
# has the figures). The bound catches a phase's clock losing time, not slowness: a loaded CI
# machine, its servers in this process's threads (the GIL), once took 14 ms; 50 ms leaves room.
SUM_TOLERANCE_SECONDS = 0.05


@pytest.fixture(scope="module")
def plain() -> Iterator[Site]:
    with serving(None) as site:
        yield site


def server_tls(ca: trustme.CA, **cert: dt.datetime) -> ssl.SSLContext:
    """Return a server context with a certificate for localhost issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", **cert).configure_cert(context)  # type: ignore[arg-type]
    return context


@pytest.fixture(scope="module")
def secure(ca: trustme.CA) -> Iterator[Site]:
    with serving(server_tls(ca)) as site:
        yield site


def fetch_suite(path: str, count: int = 1) -> Suite:
    """Return a suite that GETs ``path`` from the default target ``count`` times."""
    suite = Suite("fetch")

    @suite.test
    async def get(t: T) -> None:
        for _ in range(count):
            r = await t.http.get(path)
            assert r.status_code == 200

    return suite


async def run_fetch(settings: Settings, path: str, count: int = 1) -> TestResult:
    recorder = await run_suites(settings, [fetch_suite(path, count)])
    (result,) = recorder.tests
    return result


def target(
    site: Site, tmp_path: Path, ca: trustme.CA | None = None, **options: object
) -> dict[str, TargetSettings]:
    if ca is not None:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        options["ca_bundle"] = bundle
    return {"default": TargetSettings(base_url=site.url, **options)}


def check_sum(request: RequestRecord) -> None:
    total = sum(request.phases.values())
    assert total <= request.duration_seconds + 1e-6
    assert request.duration_seconds - total < SUM_TOLERANCE_SECONDS


async def test_server_delay_shows_in_processing_not_connect(
    plain: Site, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = settings_for(targets=target(plain, tmp_path))
    result = await run_fetch(settings, "/delay/200")
    assert result.outcome is Outcome.PASSED
    (request,) = result.requests
    assert set(request.phases) == {"resolve", "connect", "processing", "transfer"}
    assert request.phases["processing"] == pytest.approx(0.2, abs=0.05)
    assert request.phases["connect"] < 0.05
    assert (request.status, request.method, request.path) == (200, "GET", "/delay/200")
    assert (request.cache, request.pop) == ("Hit", "LHR")
    check_sum(request)


@pytest.mark.parametrize(
    "http2",
    # True: httpx's own transport (httpcore, trace hook, TimedBackend); the server speaks
    # HTTP/1.1 only, so ALPN settles on it, but the instrumentation path is the HTTP/2 one.
    [False, True],
    ids=["own-transport", "httpcore-transport"],
)
async def test_https_records_tls_phase_version_and_certificate_expiry(
    secure: Site, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path, http2: bool
) -> None:
    settings = settings_for(targets=target(secure, tmp_path, ca, http2=http2))
    result = await run_fetch(settings, "/delay/10?token=secret", count=2)
    assert result.outcome is Outcome.PASSED
    first, second = result.requests
    assert set(first.phases) == {"resolve", "connect", "tls", "processing", "transfer"}
    assert first.phases["tls"] > 0
    assert first.tls_version.startswith("TLSv1.")
    assert first.cert_not_after is not None
    assert first.cert_not_after > time.time() + 86400
    assert first.path == "/delay/10"  # never the query string
    assert set(second.phases) == {"processing", "transfer"}  # pooled: no handshakes
    for request in result.requests:
        check_sum(request)


async def test_the_tls_context_is_made_before_the_first_https_requests_clock_starts(
    secure: Site, ca: trustme.CA
) -> None:
    """Client set-up (a context with the system's CAs takes ~25 ms) is not the target's latency."""
    import httpx

    from synthetic_exporter.http.instrumentation import InstrumentedTransport
    from synthetic_exporter.http.timing import CURRENT_SINK, RequestTimer
    from synthetic_exporter.http.transport import Http11Transport

    made_at: list[float] = []

    def slow_context() -> ssl.SSLContext:
        time.sleep(0.3)
        made_at.append(time.monotonic())
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return context

    timers: list[RequestTimer] = []
    token = CURRENT_SINK.set(timers.append)
    transport = InstrumentedTransport("default", Http11Transport(make_ssl_context=slow_context))
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(2):
                assert (await client.get(f"{secure.url}/")).status_code == 200
    finally:
        CURRENT_SINK.reset(token)
    assert len(made_at) == 1  # once, for the first request
    first, second = (timer.record() for timer in timers)
    assert timers[0].started >= made_at[0]
    assert first.phases["tls"] < 0.3
    assert first.duration_seconds < 0.3
    assert "tls" not in second.phases


async def test_fresh_connections_pay_the_handshakes_every_run(
    secure: Site, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = settings_for(targets=target(secure, tmp_path, ca, fresh_connections=True))
    for _ in range(3):
        result = await run_fetch(settings, "/", count=2)
        first, second = result.requests
        assert {"connect", "tls"} <= set(first.phases)
        assert "tls" not in second.phases  # pooled within the run, like a browser visit


async def test_untrusted_certificate_fails_with_a_clear_message(
    secure: Site, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = settings_for(targets=target(secure, tmp_path))
    result = await run_fetch(settings, "/")
    assert result.outcome is Outcome.ERROR
    port = secure.url.rsplit(":", 1)[1]
    assert result.message == (
        f"TLS certificate of localhost:{port} not accepted: unable to get local issuer"
        " certificate (certificate verify failed)"
    )
    (request,) = result.requests
    assert request.status is None
    assert "ConnectError" in request.error


async def test_expired_certificate_fails_with_a_clear_message(
    ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path
) -> None:
    with serving(server_tls(ca, not_after=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))) as expired:
        settings = settings_for(targets=target(expired, tmp_path, ca))
        result = await run_fetch(settings, "/")
    assert result.outcome is Outcome.ERROR
    assert "not accepted: certificate has expired" in result.message


async def test_secrets_in_paths_and_errors_are_masked_in_request_records(
    plain: Site, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = settings_for(targets=target(plain, tmp_path), secrets={"token": "tok-5ecret-value"})
    result = await run_fetch(settings, "/delay/0/tok-5ecret-value")
    (request,) = result.requests
    assert request.path == "/delay/0/***"
    assert "tok-5ecret-value" not in repr(result)


def traceparents(prefix: str) -> list[tuple[str, str]]:
    """Return the (path, trace id) of each request the server saw under ``prefix``, in order.

    A request without a valid ``traceparent`` has the trace id "".
    """
    found = []
    for path, header in list(EdgeHandler.seen):
        if path.startswith(prefix):
            parsed = parse_traceparent(header or "")
            found.append((path, parsed.trace_id if parsed else ""))
    return found


def span_ids(prefix: str) -> list[str]:
    """Return the span id of each request the server saw under ``prefix``, in order."""
    return [
        parsed.span_id
        for path, header in list(EdgeHandler.seen)
        if path.startswith(prefix) and (parsed := parse_traceparent(header or "")) is not None
    ]


@pytest.mark.parametrize("http2", [False, True], ids=["own-transport", "httpcore-transport"])
async def test_each_request_carries_the_test_runs_trace_and_its_own_span(
    plain: Site, settings_for: SettingsFor, tmp_path: Path, http2: bool
) -> None:
    prefix = f"/trace-{http2}/"
    suite = Suite("traced")

    @suite.test
    async def one(t: T) -> None:
        t.cleanup(lambda: t.http.get(f"{prefix}one/cleanup"))
        for index in range(3):
            assert (await t.http.get(f"{prefix}one/{index}")).status_code == 200

    @suite.test
    async def two(t: T) -> None:
        assert (await t.http.get(f"{prefix}two")).status_code == 200

    settings = settings_for(targets=target(plain, tmp_path, http2=http2))
    recorder = await run_suites(settings, [suite])
    first, second = recorder.tests
    assert first.trace_id != second.trace_id
    seen = traceparents(prefix)
    assert seen == [
        *[(f"{prefix}one/{index}", first.trace_id) for index in range(3)],
        (f"{prefix}one/cleanup", first.trace_id),  # a test's cleanups share its trace
        (f"{prefix}two", second.trace_id),
    ]
    spans = span_ids(prefix)
    assert len(set(spans)) == 5
    # The records carry the span each request sent (the cleanup's is not recorded).
    assert [r.span_id for r in first.requests] == spans[:3]
    assert [r.span_id for r in second.requests] == spans[4:]


async def test_retries_and_subtests_share_the_test_runs_trace(
    plain: Site, settings_for: SettingsFor, tmp_path: Path
) -> None:
    prefix = "/trace-retries/"
    suite = Suite("retried", retries=1)
    attempts: list[int] = []

    @suite.test
    async def flaky(t: T) -> None:
        attempts.append(1)
        await t.http.get(f"{prefix}attempt/{len(attempts)}")

        async def sub(t: T) -> None:
            await t.http.get(f"{prefix}sub/{len(attempts)}")

        await t.run("sub", sub)
        assert len(attempts) > 1, "fails on the first attempt"

    settings = settings_for(targets=target(plain, tmp_path))
    recorder = await run_suites(settings, [suite])
    results = by_name(recorder.tests)
    test = results["retried/flaky"]
    assert test.outcome is Outcome.FLAKY
    assert [r.trace_id for r in recorder.tests] == [test.trace_id] * 3  # sub twice, then flaky
    assert {trace for _, trace in traceparents(prefix)} == {test.trace_id}
    assert len(traceparents(prefix)) == 4


async def test_a_checks_own_traceparent_is_kept(
    plain: Site, settings_for: SettingsFor, tmp_path: Path
) -> None:
    prefix = "/trace-own/"
    own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    suite = Suite("own")

    @suite.test
    async def mine(t: T) -> None:
        await t.http.get(f"{prefix}mine", headers={"traceparent": own})
        await t.http.get(f"{prefix}ours")

    settings = settings_for(targets=target(plain, tmp_path))
    (result,) = (await run_suites(settings, [suite])).tests
    sent = [header for path, header in EdgeHandler.seen if path.startswith(prefix)]
    assert sent[0] == own
    assert traceparents(prefix)[1] == (f"{prefix}ours", result.trace_id)
    assert [r.span_id for r in result.requests] == ["b7ad6b7169203331", span_ids(prefix)[1]]
