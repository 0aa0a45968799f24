"""Target clients: headers, marker, bearer secret, shared versus fresh per run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.http.clients import MARKER_HEADER, USER_AGENT, Targets
from tests.conftest import fresh_python

SettingsFor = Callable[..., Settings]


async def test_clients_carry_marker_headers_and_bearer_secret(settings_for: SettingsFor) -> None:
    settings = settings_for(
        environment="staging",
        secrets={"api_key": "sk-123456"},
        targets={
            "api": TargetSettings(
                base_url="https://api.example.com/v1",
                headers={"X-Tenant": "t1"},
                bearer_secret="api_key",
            ),
            "cdn": TargetSettings(base_url="https://cdn.example.com", fresh_connections=True),
            "h2": TargetSettings(
                base_url="https://h2.example.com", fresh_connections=True, http2=True
            ),
        },
    )
    targets = Targets(settings)
    try:
        api = targets.shared["api"]
        assert str(api.base_url) == "https://api.example.com/v1/"
        assert api.headers["authorization"] == "Bearer sk-123456"
        assert api.headers[MARKER_HEADER] == "staging"
        assert api.headers["user-agent"] == USER_AGENT
        assert api.headers["x-tenant"] == "t1"
        async with targets.for_run() as first, targets.for_run() as second:
            assert first["api"] is second["api"] is api  # pooled across runs
            # HTTP/1.1: one client; its transport keeps connections per run (test_transport).
            assert first["cdn"] is second["cdn"] is targets.shared["cdn"]
            # HTTP/2 runs on httpx's transport: a fresh client for every run.
            assert first["h2"] is not second["h2"]
            assert first["h2"] is not targets.shared["h2"]
        assert first["h2"].is_closed
        assert not first["cdn"].is_closed
    finally:
        await targets.aclose()


async def test_target_clients_keep_cookies_the_server_sets(settings_for: SettingsFor) -> None:
    """The cheaper cookie jar still stores Set-Cookie and sends it back on later requests."""
    import asyncio

    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            cookie = [line for line in head.split(b"\r\n") if line.lower().startswith(b"cookie:")]
            seen.append(cookie[0] if cookie else b"")
            extra = b"Set-Cookie: session=abc; Path=/\r\n" if b"GET /login " in head else b""
            writer.write(b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: 2\r\n\r\nok")
            await writer.drain()
            if len(seen) == 3:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = settings_for(targets={"api": TargetSettings(base_url=f"http://127.0.0.1:{port}")})
    targets = Targets(settings)
    try:
        client = targets.shared["api"]
        for path in ("/before", "/login", "/after"):
            assert (await client.get(path)).status_code == 200
        assert client.cookies["session"] == "abc"
    finally:
        await targets.aclose()
        server.close()
        await server.wait_closed()
    assert seen == [b"", b"", b"Cookie: session=abc"]


async def test_tls_contexts_are_made_up_front_only_where_tls_is_configured(
    settings_for: SettingsFor,
) -> None:
    """https, HTTP/2, CA and verify settings get their context at start-up (a bad CA bundle
    fails there); a plain http target makes one, with the system's CAs, at its first https URL."""
    import asyncio
    import ssl

    import trustme

    settings = settings_for(
        targets={
            "web": TargetSettings(base_url="http://127.0.0.1:9"),
            "api": TargetSettings(base_url="HTTPS://api.example.com"),
            "insecure": TargetSettings(base_url="http://127.0.0.1:9", verify=False),
        }
    )
    targets = Targets(settings)
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        assert set(targets.contexts) == {"api", "insecure"}
        # The test CA is not among the system's: verification fails, as it must.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await targets.shared["web"].get(f"https://127.0.0.1:{port}/")
        assert targets.contexts["web"].verify_mode == ssl.CERT_REQUIRED
        assert targets.context("web") is targets.contexts["web"]
    finally:
        await targets.aclose()
        server.close()
        await server.wait_closed()


def test_target_client_merges_urls_like_httpx() -> None:
    """Plain paths merged without parsing give exactly httpx's URLs; others go through httpx."""
    from synthetic_exporter.http.clients import TargetClient

    ours = TargetClient(base_url="https://api.example.com/v1")
    plain = httpx.AsyncClient(base_url="https://api.example.com/v1")
    for url in ("/orders", "orders?x=1", "/a%20b", "/a b", "/./x", "https://other.example.com/x"):
        assert ours.build_request("GET", url).url == plain.build_request("GET", url).url
    assert ours.build_request("GET", "/o", params={"p": "1"}).url == httpx.URL(
        "https://api.example.com/v1/o?p=1"
    )
    ours.base_url = "https://api.example.com/v2"
    assert ours.build_request("GET", "/orders").url == httpx.URL(
        "https://api.example.com/v2/orders"
    )


@pytest.mark.parametrize(
    "base",
    [
        "https://api.example.com/v1",
        "http://127.0.0.1:8080",
        "http://[::1]:9/x/y/",
        "https://a.example/?q=1",
        "https://a.example/#f",
        "http://user:pw@h.example/p",
        "https://a.example/%7Euser/",
    ],
)
def test_plain_merge_agrees_with_httpx_on_random_paths(base: str) -> None:
    """Wherever the unparsed merge applies, it builds the URL httpx builds, to the last field."""
    import random

    from synthetic_exporter.http._httpx_adapter import _parsed, merge_plain_path

    rng = random.Random(base)
    pieces = [*"abcXYZ019/._-~!$&'()*+,;=:@%?#[]^|{}`\"<> \t\\", "é", "%41", "%zz", "..", "//"]
    client = httpx.AsyncClient(base_url=base)
    applied = 0
    for _ in range(5000):
        url = "/" + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        merged = merge_plain_path(client.base_url, url)
        if merged is None:
            continue
        applied += 1
        expected = client.build_request("GET", url).url  # httpx's own merge
        assert _parsed(merged) == _parsed(expected), url
        assert str(merged) == str(expected)
    plain_base = "?" not in base and "#" not in base
    assert (applied > 500) == plain_base
    if plain_base:
        assert merge_plain_path(client.base_url, "/delay/0/m17?x=1") is not None


def test_httpcore_loads_only_for_http2_targets(tmp_path: Path) -> None:
    """Without an HTTP/2 target the agent never imports httpcore (nor h2): memory it saves."""
    probe = """
import sys
from synthetic_exporter.http.clients import Targets
from synthetic_exporter.core.settings import Settings, TargetSettings
import synthetic_exporter.app.cli, synthetic_exporter.app.serve
http2 = sys.argv[1] == "h2"
Targets(Settings(targets={"api": TargetSettings(base_url="https://a.example", http2=http2)}))
print("httpcore" in sys.modules, "h2" in sys.modules)
"""
    env = {"PATH": "/usr/bin:/bin", "SYNTHETIC_STATE_DIR": str(tmp_path)}
    answers = [fresh_python(probe, kind, env=env) for kind in ("h1", "h2")]
    assert answers == [["False", "False"], ["True", "True"]]
