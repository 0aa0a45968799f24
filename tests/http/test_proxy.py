"""Targets behind a real egress proxy (tinyproxy on 127.0.0.1): CONNECT tunnels, phases, errors.

The proxy runs as a subprocess in the foreground with a config written here; the targets are
real servers on 127.0.0.1 (https with a ``trustme`` certificate for ``localhost``).
"""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import Outcome, RequestRecord, TestResult
from synthetic_exporter.core.settings import Settings, SettingsError, TargetSettings, load_settings
from synthetic_exporter.http.proxy import Proxy
from tests.conftest import start_agent, stop_process, write_checks
from tests.engine_helpers import run_suites
from tests.http.edge_site import serving
from tests.http.h2_server import Answer, serve_h2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tinyproxy") is None, reason="needs tinyproxy"),
]
SettingsFor = Callable[..., Settings]
SECRET = "pr0xy-s3cret-42"  # the proxy password in the auth tests
# As in test_instrumentation: phases add up to the duration but for the transport's own work
# (bounded for lost clocks, not for speed: a loaded CI machine once took 14 ms here).
SUM_TOLERANCE_SECONDS = 0.05


def serve(context: ssl.SSLContext | None) -> Iterator[str]:
    """Serve the edge site on 127.0.0.1 (TLS when ``context`` is given); yield its URL."""
    with serving(context) as site:
        yield site.url


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"use_uvloop": False}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Both event loops the agent may run on (uvloop's transports switch protocols too)."""
    backend: tuple[str, dict[str, bool]] = request.param
    return backend


@pytest.fixture(scope="module")
def secure(ca: trustme.CA) -> Iterator[str]:
    """An https target with a certificate for localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    yield from serve(context)


def edge_answer(headers: dict[str, str]) -> Answer:
    """Answer every request with a small body and CloudFront's headers."""
    return 200, [("x-cache", "Hit from cloudfront"), ("x-amz-cf-pop", "LHR61-P1")], b"x" * 2_000


@pytest.fixture(scope="module")
def secure_h2(ca: trustme.CA) -> Iterator[str]:
    """An https target speaking HTTP/2 only (ALPN h2), on its own event loop in a thread."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    with serve_h2(edge_answer, context) as url:
        yield url


@pytest.fixture(scope="module")
def plain() -> Iterator[str]:
    """A plain http target."""
    yield from serve(None)


def free_port() -> int:
    """Return a port of 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TinyProxy:
    """A tinyproxy process on 127.0.0.1 and its log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        """Return what the proxy logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_tinyproxy(directory: Path, *extra: str) -> TinyProxy:
    """Start tinyproxy in the foreground with ``extra`` config lines; wait (bounded) for it."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "tinyproxy.conf"
    log = directory / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 10",
        "MaxClients 50",
        "LogLevel Connect",
        "Allow 127.0.0.1",
        "DisableViaHeader Yes",
        *extra,
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["tinyproxy", "-d", "-c", str(config)], stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return TinyProxy(f"http://127.0.0.1:{port}", process, log)
        except OSError:
            time.sleep(0.05)
    stop_process(process)
    raise AssertionError(f"tinyproxy did not listen on {port} within 10 s")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyProxy]:
    """An open proxy (any CONNECT port)."""
    started = start_tinyproxy(tmp_path_factory.mktemp("open-proxy"))
    yield started
    stop_process(started.process)


@pytest.fixture(scope="module")
def auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyProxy]:
    """A proxy that asks for Basic authentication (user ``synth``)."""
    started = start_tinyproxy(tmp_path_factory.mktemp("auth-proxy"), f"BasicAuth synth {SECRET}")
    yield started
    stop_process(started.process)


def fetch_suite(count: int, version: str) -> Suite:
    """Return a suite that GETs a page from the default target ``count`` times."""
    suite = Suite("fetch")

    @suite.test
    async def get(t: T) -> None:
        for _ in range(count):
            r = await t.http.get("/cdn/page")
            assert r.status_code == 200
            assert r.http_version == version

    return suite


async def run_fetch(settings: Settings, count: int = 1, version: str = "HTTP/1.1") -> TestResult:
    recorder = await run_suites(settings, [fetch_suite(count, version)])
    (result,) = recorder.tests
    return result


def settings_with(
    settings_for: SettingsFor,
    tmp_path: Path,
    base_url: str,
    ca: trustme.CA | None = None,
    secrets: dict[str, str] | None = None,
    **options: object,
) -> Settings:
    if ca is not None:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        options["ca_bundle"] = bundle
    target = TargetSettings(base_url=base_url, **options)
    return settings_for(targets={"default": target}, secrets=secrets or {})


def check_sum(request: RequestRecord) -> None:
    total = sum(request.phases.values())
    assert total <= request.duration_seconds + 1e-6
    assert request.duration_seconds - total < SUM_TOLERANCE_SECONDS


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_https_through_the_proxy_keeps_the_target_s_tls_and_cdn(
    secure: str, proxy: TinyProxy, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = settings_with(settings_for, tmp_path, secure, ca, proxy_url=proxy.url)
    result = await run_fetch(settings, count=2)
    assert result.outcome is Outcome.PASSED, result.message
    first, second = result.requests
    # The proxy is an IP address: nothing to resolve; no TCP connect of our own to the target.
    assert set(first.phases) == {"proxy", "tls", "processing", "transfer"}
    assert first.phases["proxy"] > 0
    assert first.phases["tls"] > 0
    assert first.tls_version.startswith("TLSv1.")  # the target's TLS, through the tunnel
    assert first.cert_not_after is not None
    assert (first.cache, first.pop) == ("Hit", "LHR")  # the target's headers
    assert set(second.phases) == {"processing", "transfer"}  # the tunnel is kept alive
    for request in result.requests:
        check_sum(request)
    assert f"CONNECT localhost:{port_of(secure)} HTTP/1.1" in proxy.log_text()


async def test_http2_through_the_proxy_keeps_the_target_s_tls_and_cdn(
    secure_h2: str, proxy: TinyProxy, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = settings_with(settings_for, tmp_path, secure_h2, ca, http2=True, proxy_url=proxy.url)
    result = await run_fetch(settings, count=2, version="HTTP/2")
    assert result.outcome is Outcome.PASSED, result.message
    first, second = result.requests
    assert set(first.phases) == {"proxy", "tls", "processing", "transfer"}
    assert first.phases["proxy"] > 0
    assert first.phases["tls"] > 0
    assert first.tls_version.startswith("TLSv1.")
    assert first.cert_not_after is not None
    assert (first.cache, first.pop) == ("Hit", "LHR")
    assert set(second.phases) == {"processing", "transfer"}
    for request in result.requests:
        check_sum(request)
    assert f"CONNECT localhost:{port_of(secure_h2)} HTTP/1.1" in proxy.log_text()


async def test_plain_http_goes_through_a_connect_tunnel_too(
    plain: str, proxy: TinyProxy, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = settings_with(settings_for, tmp_path, plain, proxy_url=proxy.url)
    result = await run_fetch(settings)
    assert result.outcome is Outcome.PASSED, result.message
    (request,) = result.requests
    assert set(request.phases) == {"proxy", "processing", "transfer"}
    assert (request.cache, request.pop) == ("Hit", "LHR")
    check_sum(request)
    assert f"CONNECT localhost:{port_of(plain)} HTTP/1.1" in proxy.log_text()


async def test_plain_http_on_an_http2_target_through_a_proxy_is_refused(
    secure_h2: str,
    plain: str,
    proxy: TinyProxy,
    ca: trustme.CA,
    settings_for: SettingsFor,
    tmp_path: Path,
) -> None:
    settings = settings_with(settings_for, tmp_path, secure_h2, ca, http2=True, proxy_url=proxy.url)
    suite = Suite("absolute")

    @suite.test
    async def get(t: T) -> None:
        await t.http.get(f"{plain}/cdn/page")  # an absolute http:// URL

    logged_before = len(proxy.log_text())
    (result,) = (await run_suites(settings, [suite])).tests
    assert result.outcome is Outcome.ERROR
    assert "UnsupportedProtocol: http:// through proxy" in result.message
    assert f"localhost:{port_of(plain)}" not in proxy.log_text()[logged_before:]


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_a_proxy_that_refuses_names_itself_and_its_status(
    secure: str, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path, http2: bool
) -> None:
    # tinyproxy answers 403 to CONNECT to a port not listed in ConnectPort.
    refusing = start_tinyproxy(tmp_path / "refusing", "ConnectPort 443")
    try:
        settings = settings_with(
            settings_for, tmp_path, secure, ca, proxy_url=refusing.url, http2=http2
        )
        result = await run_fetch(settings)
    finally:
        stop_process(refusing.process)
    assert result.outcome is Outcome.ERROR
    proxy_name = refusing.url.removeprefix("http://")
    expected = f"ProxyError: proxy {proxy_name} refused CONNECT localhost:{port_of(secure)}: 403"
    assert expected in result.message
    (request,) = result.requests
    assert request.error.startswith(expected)
    assert "SSL" not in result.message


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_a_proxy_that_is_down_is_named(
    secure: str, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path, http2: bool
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = settings_with(settings_for, tmp_path, secure, ca, proxy_url=down, http2=http2)
    result = await run_fetch(settings)
    assert result.outcome is Outcome.ERROR
    assert f"ConnectError: cannot connect to proxy {down.removeprefix('http://')}: " in (
        result.message
    )


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_a_proxy_that_never_answers_times_out_naming_itself(
    secure: str, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path, http2: bool
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        proxy_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = settings_with(
            settings_for, tmp_path, secure, ca, proxy_url=proxy_url, timeout=0.5, http2=http2
        )
        started = time.monotonic()
        result = await run_fetch(settings)
    assert time.monotonic() - started < 5
    assert result.outcome is Outcome.TIMEOUT
    expected = (
        f"ConnectTimeout: connecting to localhost:{port_of(secure)}"
        f" through proxy {proxy_url.removeprefix('http://')} timed out"
    )
    assert expected in result.message


async def test_a_proxy_name_that_does_not_resolve_is_named(
    secure: str, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path
) -> None:
    proxy_url = "http://no-such-proxy.invalid:3128"
    settings = settings_with(settings_for, tmp_path, secure, ca, proxy_url=proxy_url)
    result = await run_fetch(settings)
    assert result.outcome is Outcome.ERROR
    assert "ConnectError: proxy no-such-proxy.invalid:3128: cannot resolve" in result.message


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_proxy_authentication_with_and_without_the_secret(
    secure: str,
    secure_h2: str,
    auth_proxy: TinyProxy,
    ca: trustme.CA,
    settings_for: SettingsFor,
    tmp_path: Path,
    http2: bool,
) -> None:
    site = secure_h2 if http2 else secure
    with_secret = settings_with(
        settings_for,
        tmp_path,
        site,
        ca,
        secrets={"proxy_login": f"synth:{SECRET}"},
        proxy_url=auth_proxy.url,
        proxy_auth_secret="proxy_login",
        http2=http2,
    )
    passed = await run_fetch(with_secret, version="HTTP/2" if http2 else "HTTP/1.1")
    assert passed.outcome is Outcome.PASSED, passed.message
    assert "proxy" in passed.requests[0].phases

    without = settings_with(settings_for, tmp_path, site, ca, proxy_url=auth_proxy.url, http2=http2)
    refused = await run_fetch(without)
    assert refused.outcome is Outcome.ERROR
    assert "refused CONNECT" in refused.message
    assert ": 407" in refused.message
    for result in (passed, refused):
        assert SECRET not in repr(result)


def test_the_credentials_never_show_in_a_proxy_s_repr_or_errors() -> None:
    proxy = Proxy.from_url("http://proxy.internal:3128", f"synth:{SECRET}")
    token = base64.b64encode(f"synth:{SECRET}".encode()).decode()
    assert SECRET not in repr(proxy)
    assert token not in repr(proxy)
    assert proxy.name == "proxy.internal:3128"
    request = proxy.connect_request("api.example.com", 443)
    assert request.startswith(b"CONNECT api.example.com:443 HTTP/1.1\r\n")
    assert f"Proxy-Authorization: Basic {token}\r\n".encode() in request


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        (
            {"PROXY_URL": "http://synth:pw@127.0.0.1:3128"},
            "SYNTHETIC_TARGETS__API__PROXY_URL: must not carry credentials (user:password@)",
        ),
        (
            {"PROXY_URL": "https://127.0.0.1:3128"},
            "SYNTHETIC_TARGETS__API__PROXY_URL: must be an http:// proxy URL",
        ),
        (
            {"PROXY_URL": "http://127.0.0.1:3128", "HTTP2": "true", "BASE_URL": "http://a.b"},
            "SYNTHETIC_TARGETS__API: PROXY_URL with HTTP2 needs an https:// BASE_URL",
        ),
        (
            {"PROXY_URL": "http://127.0.0.1:3128", "PROXY_AUTH_SECRET": "nope"},
            "SYNTHETIC_TARGETS__API__PROXY_AUTH_SECRET: no secret named 'nope'",
        ),
        (
            {"PROXY_URL": "http://127.0.0.1:3128", "PROXY_AUTH_SECRET": "login"},
            "SYNTHETIC_SECRETS__LOGIN: is sent as proxy credentials"
            " (SYNTHETIC_TARGETS__API__PROXY_AUTH_SECRET), and is not of the form user:password",
        ),
    ],
)
def test_proxy_settings_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], problem: str
) -> None:
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "https://api.example.com")
    monkeypatch.setenv("SYNTHETIC_SECRETS__LOGIN", "no-colon-here")
    for name, value in variables.items():
        monkeypatch.setenv(f"SYNTHETIC_TARGETS__API__{name}", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert problem in str(raised.value)
    assert "no-colon-here" not in str(raised.value)
    assert "synth:pw" not in str(raised.value)


def test_the_proxy_secret_never_reaches_logs_pages_or_metrics(
    tmp_path: Path, secure: str, secure_h2: str, auth_proxy: TinyProxy, ca: trustme.CA
) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {
            "through.py": """
                from synthetic_exporter import Suite, T

                through = Suite("through")

                @through.test
                async def fetch(t: T) -> None:
                    r = await t.http.get("/cdn/page")
                    assert r.status_code == 200
                    r = await t.client("h2").get("/cdn/page")
                    assert r.http_version == "HTTP/2"
                    r = await t.client("refused").get("/cdn/page")
            """,
        },
    )
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    agent = start_agent(
        checks,
        tmp_path / "state",
        secure,
        SYNTHETIC_INTERVAL="1s",
        SYNTHETIC_LOG_LEVEL="DEBUG",
        SYNTHETIC_SECRETS__PROXY_LOGIN=f"synth:{SECRET}",
        SYNTHETIC_TARGETS__DEFAULT__CA_BUNDLE=str(bundle),
        SYNTHETIC_TARGETS__DEFAULT__PROXY_URL=auth_proxy.url,
        SYNTHETIC_TARGETS__DEFAULT__PROXY_AUTH_SECRET="proxy_login",
        SYNTHETIC_TARGETS__H2__BASE_URL=secure_h2,
        SYNTHETIC_TARGETS__H2__HTTP2="true",
        SYNTHETIC_TARGETS__H2__CA_BUNDLE=str(bundle),
        SYNTHETIC_TARGETS__H2__PROXY_URL=auth_proxy.url,
        SYNTHETIC_TARGETS__H2__PROXY_AUTH_SECRET="proxy_login",
        # The same proxy, wrong password: the 407 error path must not leak either.
        SYNTHETIC_SECRETS__WRONG_LOGIN=f"synth:{SECRET}-wrong",
        SYNTHETIC_TARGETS__REFUSED__BASE_URL=secure,
        SYNTHETIC_TARGETS__REFUSED__CA_BUNDLE=str(bundle),
        SYNTHETIC_TARGETS__REFUSED__PROXY_URL=auth_proxy.url,
        SYNTHETIC_TARGETS__REFUSED__PROXY_AUTH_SECRET="wrong_login",
    )
    try:
        deadline = time.monotonic() + 30
        metrics = ""
        while time.monotonic() < deadline and 'target="h2"' not in metrics:
            time.sleep(0.3)
            metrics = httpx.get(f"{agent.url}/metrics", timeout=5).text
        assert 'phase="proxy"' in metrics
        assert 'target="h2"' in metrics
        pages = httpx.get(f"{agent.url}/", timeout=5).text
        health = httpx.get(f"{agent.url}/healthz", timeout=5).text
    finally:
        stop_process(agent.process)
    output = "".join(agent.lines_so_far())
    assert "refused CONNECT" in output + pages + health  # the 407 was reported somewhere
    stored = "".join(
        p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()
    )
    for secret in (SECRET, base64.b64encode(f"synth:{SECRET}".encode()).decode()):
        for name, text in {
            "logs": output,
            "metrics": metrics,
            "page": pages,
            "health": health,
            "state": stored,
        }.items():
            assert secret not in text, name
