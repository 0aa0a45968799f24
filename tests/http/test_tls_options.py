"""A target's TLS options against a real nginx: client certificates, server name, TLS versions.

One nginx (Debian's package, :mod:`tests.nginx`) serves every case on 127.0.0.1, each on its own
port: mutual TLS (HTTP/1.1 and HTTP/2), TLS 1.3 only, TLS 1.2 only, and two name-based servers
(``a.test``, ``b.test``) with different certificates. Certificates come from a ``trustme`` CA.
Checks run through the engine as the agent runs them, on both HTTP paths.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import Outcome, TestResult
from synthetic_exporter.core.settings import Settings, TargetSettings
from tests import nginx
from tests.conftest import stop_process
from tests.engine_helpers import run_suites
from tests.http.test_proxy import TinyProxy, start_tinyproxy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not nginx.available(), reason="needs nginx"),
]
SettingsFor = Callable[..., Settings]
KEY_PASSWORD = "k3y-passw0rd-77"  # the encrypted client key's password
# What every server answers: the TLS server name (SNI) it got, the TLS version, the client
# certificate's subject, and the Host header.
ANSWER = (
    'return 200 "sni=$ssl_server_name tls=$ssl_protocol client=$ssl_client_s_dn host=$host\\n";'
)


@dataclass(frozen=True)
class Ports:
    """The ports of the nginx servers."""

    mtls: int
    mtls_h2: int
    tls13: int
    tls12: int
    names: int
    tls10: int


@dataclass(frozen=True)
class Site:
    """The running nginx: its ports and the files the targets need."""

    ports: Ports
    files: Path
    ca_bundle: Path

    def url(self, port: int) -> str:
        """Return the https URL of a server (by IP address: its name comes from SNI, if any)."""
        return f"https://127.0.0.1:{port}"


def _server(port: int, cert: str, *lines: str, http2: bool = False, name: str = "") -> str:
    listen = f"listen 127.0.0.1:{port} ssl{' http2' if http2 else ''};"
    if not any(line.startswith("ssl_protocols") for line in lines):
        lines = ("ssl_protocols TLSv1.2 TLSv1.3;", *lines)  # nginx 1.22's default lacks 1.3
    return "\n".join(
        [
            "  server {",
            f"    {listen}",
            f"    server_name {name or 'localhost'};",
            f"    ssl_certificate {cert}.crt;",
            f"    ssl_certificate_key {cert}.key;",
            *(f"    {line}" for line in lines),
            f"    location / {{ {ANSWER} }}",
            "  }",
        ]
    )


def _write_pair(cert: trustme.LeafCert, directory: Path, name: str) -> None:
    cert.private_key_pem.write_to_path(str(directory / f"{name}.key"))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(directory / f"{name}.crt"), append=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Site]:
    """nginx with every server of this module, and the client's certificate files."""
    files = tmp_path_factory.mktemp("tls-files")
    ca_bundle = files / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_bundle))
    for name, identity in (("server", "127.0.0.1"), ("a", "a.test"), ("b", "b.test")):
        _write_pair(ca.issue_cert(identity), files, name)
    client = ca.issue_cert("synthetic-client.test", common_name="synthetic-client")
    _write_pair(client, files, "client")
    (files / "client-combined.pem").write_bytes(
        (files / "client.crt").read_bytes() + (files / "client.key").read_bytes()
    )
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
    )
    (files / "client-encrypted.key").write_bytes(encrypted)
    ports = Ports(*(nginx.free_port() for _ in range(6)))
    server = str(files / "server")
    mtls = [f"ssl_client_certificate {ca_bundle};", "ssl_verify_client on;"]
    servers = "\n".join(
        [
            _server(ports.mtls, server, *mtls),
            _server(ports.mtls_h2, server, *mtls, http2=True),
            _server(ports.tls13, server, "ssl_protocols TLSv1.3;", http2=True),
            _server(ports.tls12, server, "ssl_protocols TLSv1.2;"),
            # The first server of a port is its default: what a client without SNI gets.
            _server(ports.names, str(files / "a"), name="a.test", http2=True),
            _server(ports.names, str(files / "b"), name="b.test", http2=True),
            # TLS 1.0 needs OpenSSL's security level 0 on both sides.
            _server(
                ports.tls10, server, "ssl_protocols TLSv1;", "ssl_ciphers DEFAULT:@SECLEVEL=0;"
            ),
        ]
    )
    directory = tmp_path_factory.mktemp("nginx")
    with nginx.running_nginx(directory, servers, list(vars(ports).values())):
        yield Site(ports, files, ca_bundle)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyProxy]:
    """An open egress proxy (tinyproxy), for the server name through a tunnel."""
    if shutil.which("tinyproxy") is None:
        pytest.skip("needs tinyproxy")
    started = start_tinyproxy(tmp_path_factory.mktemp("proxy"))
    yield started
    stop_process(started.process)


def settings_of(
    settings_for: SettingsFor,
    site: Site,
    port: int,
    secrets: dict[str, str] | None = None,
    **tls: object,
) -> Settings:
    """Settings with one target, ``default``, on nginx's server at ``port``."""
    target = TargetSettings(base_url=site.url(port), ca_bundle=site.ca_bundle, **tls)
    return settings_for(targets={"default": target}, secrets=secrets or {})


async def fetch(settings: Settings, expect: str = "", version: str = "") -> TestResult:
    """Run a suite that GETs ``/`` once and asserts a 200 answer holding ``expect``."""
    suite = Suite("tls")

    @suite.test
    async def get(t: T) -> None:
        r = await t.http.get("/")
        assert r.status_code == 200, r.text
        assert expect in r.text
        if version:
            assert r.http_version == version

    (result,) = (await run_suites(settings, [suite])).tests
    return result


PATHS = [pytest.param(False, id="http1"), pytest.param(True, id="http2")]


@pytest.mark.parametrize(
    ("http2", "key"),
    [
        pytest.param(False, "separate", id="http1-separate-key"),
        pytest.param(True, "combined", id="http2-key-in-cert-file"),
        pytest.param(False, "encrypted", id="http1-encrypted-key"),
        pytest.param(True, "encrypted", id="http2-encrypted-key"),
    ],
)
async def test_a_client_certificate_opens_an_mtls_server(
    site: Site, settings_for: SettingsFor, http2: bool, key: str
) -> None:
    files = site.files
    layouts: dict[str, dict[str, object]] = {
        "separate": {"client_cert": files / "client.crt", "client_key": files / "client.key"},
        "combined": {"client_cert": files / "client-combined.pem"},
        "encrypted": {
            "client_cert": files / "client.crt",
            "client_key": files / "client-encrypted.key",
            "client_key_password_secret": "client_key_pw",
        },
    }
    options = layouts[key]
    port = site.ports.mtls_h2 if http2 else site.ports.mtls
    settings = settings_of(
        settings_for, site, port, {"client_key_pw": KEY_PASSWORD}, http2=http2, **options
    )
    result = await fetch(settings, "client=CN=synthetic-client", "HTTP/2" if http2 else "HTTP/1.1")
    assert result.outcome is Outcome.PASSED, result.message
    (request,) = result.requests
    assert request.tls_version.startswith("TLSv1.")
    assert request.cert_not_after is not None  # the server's certificate, as always
    assert request.phases["tls"] > 0
    assert KEY_PASSWORD not in repr(result)


@pytest.mark.parametrize("http2", PATHS)
async def test_without_a_client_certificate_the_mtls_server_s_refusal_is_shown(
    site: Site, settings_for: SettingsFor, http2: bool
) -> None:
    port = site.ports.mtls_h2 if http2 else site.ports.mtls
    result = await fetch(settings_of(settings_for, site, port, http2=http2))
    assert result.outcome is Outcome.FAILED
    # nginx completes the handshake, then answers 400 with its reason in the body.
    assert "400 No required SSL certificate was sent" in result.message


@pytest.mark.parametrize("http2", PATHS)
async def test_min_tls13_reaches_a_tls13_only_server_and_records_the_version(
    site: Site, settings_for: SettingsFor, http2: bool
) -> None:
    settings = settings_of(
        settings_for, site, site.ports.tls13, http2=http2, min_tls_version="TLS13"
    )
    result = await fetch(settings, "tls=TLSv1.3")
    assert result.outcome is Outcome.PASSED, result.message
    (request,) = result.requests
    assert request.tls_version == "TLSv1.3"
    assert request.cert_not_after is not None


@pytest.mark.parametrize("http2", PATHS)
async def test_max_tls12_against_a_tls13_only_server_fails_naming_the_versions(
    site: Site, settings_for: SettingsFor, http2: bool
) -> None:
    settings = settings_of(
        settings_for, site, site.ports.tls13, http2=http2, max_tls_version="TLS12"
    )
    result = await fetch(settings)
    assert result.outcome is Outcome.ERROR
    assert f"TLS handshake with 127.0.0.1:{site.ports.tls13} failed" in result.message
    assert "no TLS version in common" in result.message
    assert "MIN_TLS_VERSION/MAX_TLS_VERSION" in result.message
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in result.message  # OpenSSL's own words stay
    (request,) = result.requests
    assert "tls" not in request.phases


@pytest.mark.parametrize("http2", PATHS)
async def test_min_tls13_against_a_tls12_only_server_fails_naming_the_versions(
    site: Site, settings_for: SettingsFor, http2: bool
) -> None:
    settings = settings_of(
        settings_for, site, site.ports.tls12, http2=http2, min_tls_version="TLS13"
    )
    result = await fetch(settings)
    assert result.outcome is Outcome.ERROR
    assert "no TLS version in common" in result.message


async def test_tls12_bounds_reach_a_tls12_only_server(
    site: Site, settings_for: SettingsFor
) -> None:
    settings = settings_of(
        settings_for, site, site.ports.tls12, min_tls_version="TLS12", max_tls_version="TLS12"
    )
    result = await fetch(settings, "tls=TLSv1.2")
    assert result.outcome is Outcome.PASSED, result.message
    assert result.requests[0].tls_version == "TLSv1.2"


@pytest.mark.parametrize("http2", PATHS)
async def test_old_versions_are_refused_unless_asked_for(
    site: Site, settings_for: SettingsFor, http2: bool
) -> None:
    port = site.ports.tls10
    refused = await fetch(settings_of(settings_for, site, port, http2=http2))
    assert refused.outcome is Outcome.ERROR
    assert "no TLS version in common" in refused.message
    allowed = settings_of(settings_for, site, port, http2=http2, min_tls_version="TLS10")
    result = await fetch(allowed, "tls=TLSv1 ")
    assert result.outcome is Outcome.PASSED, result.message
    assert result.requests[0].tls_version == "TLSv1"


@pytest.mark.parametrize("http2", PATHS)
async def test_the_server_name_picks_the_certificate_and_is_verified(
    site: Site, settings_for: SettingsFor, http2: bool
) -> None:
    port = site.ports.names
    settings = settings_of(settings_for, site, port, http2=http2, server_name="b.test")
    # The Host header stays the URL's.
    named = await fetch(settings, "sni=b.test tls=TLSv1.3 client= host=127.0.0.1")
    assert named.outcome is Outcome.PASSED, named.message
    (request,) = named.requests
    assert request.cert_not_after is not None
    assert request.tls_version == "TLSv1.3"
    # Without it, nginx's default server (a.test) answers, and 127.0.0.1 is not its name.
    unnamed = await fetch(settings_of(settings_for, site, port, http2=http2))
    assert unnamed.outcome is Outcome.ERROR
    assert f"TLS certificate of 127.0.0.1:{port} not accepted" in unnamed.message


@pytest.mark.parametrize("http2", PATHS)
async def test_a_server_name_that_is_not_the_certificate_s_fails_verification(
    site: Site, settings_for: SettingsFor, http2: bool
) -> None:
    # c.test is no server of nginx's: it answers with its default (a.test) certificate.
    port = site.ports.names
    result = await fetch(settings_of(settings_for, site, port, http2=http2, server_name="c.test"))
    assert result.outcome is Outcome.ERROR
    assert "not accepted" in result.message
    assert "c.test" in result.message


@pytest.mark.parametrize("http2", PATHS)
async def test_the_server_name_goes_through_a_proxy_tunnel(
    site: Site, proxy: TinyProxy, settings_for: SettingsFor, http2: bool
) -> None:
    settings = settings_of(
        settings_for, site, site.ports.names, http2=http2, server_name="b.test", proxy_url=proxy.url
    )
    result = await fetch(settings, "sni=b.test")
    assert result.outcome is Outcome.PASSED, result.message
    (request,) = result.requests
    assert set(request.phases) >= {"proxy", "tls"}
    # The tunnel goes to the URL's host; only TLS inside it uses the server name.
    assert f"CONNECT 127.0.0.1:{site.ports.names} HTTP/1.1" in proxy.log_text()
