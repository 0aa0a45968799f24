"""A target's network options against real loopback servers: IP family and body size limit.

Every server test runs on both HTTP paths: our HTTP/1.1 transport and the HTTP/2 path
(httpcore, TLS with ALPN ``h2`` and a ``trustme`` certificate). IPv6 tests skip on machines
that cannot listen on ``::1`` (some CI containers). Choosing between the families of one name
needs a name with both: see test_network_dual_stack.py.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import trustme

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import Outcome, TestResult
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.http.network import (
    NetworkOptions,
    NoAddress,
    ResponseTooLarge,
    format_size,
)
from tests.conftest import start_process, stop_process
from tests.engine_helpers import run_suites
from tests.http.net_servers import H2Server, Http1Server, has_ipv6_loopback

SettingsFor = Callable[..., Settings]
Server = Http1Server | H2Server
LIMIT = 1024 * 1024
TOO_LARGE = (
    "ResponseTooLarge: response body from target 'default' exceeded MAX_BODY_BYTES (1.0 MiB)"
)
# Each endless check reads at most LIMIT; 20 of them keeping what they read would add 20 MiB.
RSS_RUNS = 20
RSS_GROWTH_BOUND = 5 * LIMIT
needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no ::1")


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("protocol", "fallback", "expected"),
    [
        (None, True, ["::1", "10.0.0.1", "fe80::1%eth0", "10.0.0.2"]),
        ("ip4", True, ["10.0.0.1", "10.0.0.2", "::1", "fe80::1%eth0"]),
        ("ip6", True, ["::1", "fe80::1%eth0", "10.0.0.1", "10.0.0.2"]),
        ("ip4", False, ["10.0.0.1", "10.0.0.2"]),
        ("ip6", False, ["::1", "fe80::1%eth0"]),
    ],
)
def test_addresses_are_ordered_by_the_preferred_family(
    protocol: str | None, fallback: bool, expected: list[str]
) -> None:
    options = NetworkOptions(ip_protocol=protocol, ip_protocol_fallback=fallback)  # type: ignore[arg-type]
    resolved = ["::1", "10.0.0.1", "fe80::1%eth0", "10.0.0.2"]
    assert options.order("host", resolved) == expected


def test_no_address_of_the_only_family_allowed_is_a_clear_error() -> None:
    options = NetworkOptions(ip_protocol="ip6", ip_protocol_fallback=False)
    with pytest.raises(NoAddress, match=r"^no IPv6 address for host api\.example\.com "):
        options.order("api.example.com", ["192.0.2.1"])


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (100, "100 bytes"),
        (1536, "1.5 KiB"),
        (10 * LIMIT, "10.0 MiB"),
        (2 * 1024 * LIMIT, "2.0 GiB"),
    ],
)
def test_sizes_read_well(size: int, text: str) -> None:
    assert format_size(size) == text


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    """The HTTP/2 servers' certificate, for the loopback addresses."""
    return ca.issue_cert("localhost", "127.0.0.1", "::1")


@pytest.fixture(scope="module")
def server_context(server_cert: trustme.LeafCert) -> ssl.SSLContext:
    """TLS for the HTTP/2 servers."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    context.set_alpn_protocols(["h2"])
    return context


@pytest.fixture(params=["http1", "http2"])
def path_kind(request: pytest.FixtureRequest) -> str:
    """Which HTTP path the target uses."""
    kind: str = request.param
    return kind


@pytest.fixture
def make_server(
    path_kind: str, server_context: ssl.SSLContext
) -> Callable[[tuple[str, ...], str], Server]:
    """Return a factory of servers of the HTTP path under test."""

    def make(hosts: tuple[str, ...], text: str = "hello") -> Server:
        if path_kind == "http2":
            return H2Server(hosts, text, server_context)
        return Http1Server(hosts, text)

    return make


@pytest.fixture
def target_of(path_kind: str, ca: trustme.CA, tmp_path: Path) -> Callable[..., TargetSettings]:
    """Return a factory of the target ``host:port`` on the HTTP path under test."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))

    def make(host: str, port: int, **options: object) -> TargetSettings:
        literal = f"[{host}]" if ":" in host else host
        if path_kind == "http2":
            return TargetSettings(
                base_url=f"https://{literal}:{port}", http2=True, ca_bundle=bundle, **options
            )
        return TargetSettings(base_url=f"http://{literal}:{port}", **options)

    return make


def fetch_suite(*paths: str) -> Suite:
    """Return a suite with a test per path, each GETting it from the default target."""
    suite = Suite("net")
    for number, path in enumerate(paths):

        async def get(t: T, path: str = path) -> None:
            r = await t.http.get(path)
            assert r.status_code == 200

        get.__name__ = f"get{number}"
        suite.test(get)
    return suite


async def run_one(settings: Settings, suite: Suite) -> list[TestResult]:
    with anyio.fail_after(60):
        return (await run_suites(settings, [suite])).tests


# --------------------------------------------------------------------------- IP family


@pytest.mark.slow
@pytest.mark.parametrize(
    ("host", "family"),
    [("127.0.0.1", 4), pytest.param("::1", 6, marks=needs_ipv6)],
    ids=["ipv4", "ipv6"],
)
async def test_the_address_and_family_are_recorded_on_new_and_reused_connections(
    make_server: Callable[..., Server],
    target_of: Callable[..., TargetSettings],
    settings_for: SettingsFor,
    host: str,
    family: int,
) -> None:
    async with make_server((host,)) as server:
        settings = settings_for(targets={"default": target_of(host, server.port)})
        results = await run_one(settings, fetch_suite("/hello/one", "/hello/two"))
        assert server.accepted == 1
    assert [r.outcome for r in results] == [Outcome.PASSED] * 2, results[0].message
    first, second = (r.requests[0] for r in results)
    assert (first.remote_address, first.ip_family) == (host, family)
    assert (second.remote_address, second.ip_family) == (host, family)
    assert "connect" in first.phases
    assert "connect" not in second.phases  # reused: the address kept on the connection


@pytest.mark.slow
async def test_the_address_is_recorded_when_the_answer_never_comes(
    make_server: Callable[..., Server],
    target_of: Callable[..., TargetSettings],
    settings_for: SettingsFor,
) -> None:
    async with make_server(("127.0.0.1",)) as server:
        target = target_of("127.0.0.1", server.port, timeout=0.3)
        (result,) = await run_one(settings_for(targets={"default": target}), fetch_suite("/silent"))
    assert result.outcome is Outcome.TIMEOUT  # an httpx timeout counts as the test's
    (request,) = result.requests
    assert request.error.startswith("ReadTimeout")
    assert (request.status, request.remote_address, request.ip_family) == (None, "127.0.0.1", 4)


@pytest.mark.slow
async def test_ip6_without_fallback_against_an_ipv4_host_fails_clearly(
    make_server: Callable[..., Server],
    target_of: Callable[..., TargetSettings],
    settings_for: SettingsFor,
) -> None:
    async with make_server(("127.0.0.1",)) as server:
        target = target_of("127.0.0.1", server.port, ip_protocol="ip6", ip_protocol_fallback=False)
        settings = settings_for(targets={"default": target})
        (result,) = await run_one(settings, fetch_suite("/hello"))
        assert server.accepted == 0
    assert result.outcome is Outcome.ERROR
    assert "ConnectError: no IPv6 address for host 127.0.0.1" in result.message
    (request,) = result.requests
    assert request.error.startswith("ConnectError: no IPv6 address for host 127.0.0.1")
    assert (request.remote_address, request.ip_family, request.status) == ("", None, None)


@pytest.mark.slow
@needs_ipv6
async def test_ip4_with_fallback_reaches_an_ipv6_only_host(
    make_server: Callable[..., Server],
    target_of: Callable[..., TargetSettings],
    settings_for: SettingsFor,
) -> None:
    async with make_server(("::1",)) as server:
        settings = settings_for(
            targets={"default": target_of("::1", server.port, ip_protocol="ip4")}
        )
        (result,) = await run_one(settings, fetch_suite("/hello"))
    assert result.outcome is Outcome.PASSED, result.message
    assert result.requests[0].ip_family == 6


# --------------------------------------------------------------------------- body size limit


def endless_suite(count: int, reading: str, received: list[int]) -> Suite:
    """Return a suite whose test reads ``/endless`` ``count`` times, then ``/hello``.

    Each error is caught (and kept in its request's record), so that the test goes on.
    """
    suite = Suite("net")

    async def read(t: T) -> None:
        if reading == "buffered":
            await t.http.get("/endless")
            return
        async with t.http.stream("GET", "/endless") as r:
            async for chunk in r.aiter_raw():
                received.append(len(chunk))

    @suite.test
    async def endless(t: T) -> None:
        for _ in range(count):
            with pytest.raises(ResponseTooLarge):
                await read(t)
        assert (await t.http.get("/hello")).text == "hello"

    return suite


@pytest.mark.slow
@pytest.mark.parametrize("reading", ["buffered", "streamed"])
async def test_an_endless_body_fails_at_the_limit_and_its_connection_is_not_reused(
    make_server: Callable[..., Server],
    target_of: Callable[..., TargetSettings],
    settings_for: SettingsFor,
    reading: str,
) -> None:
    received: list[int] = []
    async with make_server(("127.0.0.1",)) as server:
        target = target_of("127.0.0.1", server.port, max_body_bytes=LIMIT)
        settings = settings_for(targets={"default": target})
        (result,) = await run_one(settings, endless_suite(1, reading, received))
        accepted = server.accepted
    assert result.outcome is Outcome.PASSED, result.message
    endless, hello = result.requests
    assert (endless.status, endless.error) == (200, TOO_LARGE)
    assert (hello.status, hello.error) == (200, "")
    assert accepted == 2  # the failed request's connection was closed, not pooled
    if reading == "streamed":
        assert LIMIT - 4 * 65536 < sum(received) <= LIMIT


@pytest.mark.slow
@pytest.mark.parametrize(("size", "ok"), [(LIMIT, True), (LIMIT + 1, False)])
async def test_a_body_at_the_limit_passes_and_one_byte_more_fails(
    make_server: Callable[..., Server],
    target_of: Callable[..., TargetSettings],
    settings_for: SettingsFor,
    size: int,
    ok: bool,
) -> None:
    async with make_server(("127.0.0.1",)) as server:
        target = target_of("127.0.0.1", server.port, max_body_bytes=LIMIT)
        (result,) = await run_one(
            settings_for(targets={"default": target}), fetch_suite(f"/sized/{size}")
        )
    assert result.outcome is (Outcome.PASSED if ok else Outcome.ERROR), result.message
    assert result.message == ("" if ok else TOO_LARGE)


def rss_bytes() -> int:
    """Return this process's resident set size (VmRSS)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
async def test_endless_bodies_leave_the_agent_s_memory_where_it_was(
    path_kind: str,
    server_cert: trustme.LeafCert,
    target_of: Callable[..., TargetSettings],
    settings_for: SettingsFor,
    tmp_path: Path,
) -> None:
    # The server runs in a process of its own: only the agent's memory is measured here.
    pem = tmp_path / "server.pem"
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    server = start_process(
        [sys.executable, "-m", "tests.http.net_servers", path_kind, str(pem)], "listening on "
    )
    try:
        port = int(server.url.rsplit(":", 1)[1])
        target = target_of("127.0.0.1", port, max_body_bytes=LIMIT)
        settings = settings_for(targets={"default": target})
        await run_one(settings, endless_suite(2, "buffered", []))  # warm up
        before = rss_bytes()
        (result,) = await run_one(settings, endless_suite(RSS_RUNS, "buffered", []))
        growth = rss_bytes() - before
    finally:
        stop_process(server.process)
    assert result.outcome is Outcome.PASSED, result.message
    assert [r.error for r in result.requests[:-1]] == [TOO_LARGE] * RSS_RUNS
    print(f"RSS growth over {RSS_RUNS} endless bodies: {growth / LIMIT:.2f} MiB")
    assert growth < RSS_GROWTH_BOUND
