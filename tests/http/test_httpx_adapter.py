"""What the agent relies on in httpx, checked so that an httpx upgrade that changes it fails here.

The adapter's fast URL merge reads httpx's private ``URL._uri_reference``; ``TargetClient``
relies on httpx sending every request through ``build_request`` and storing cookies through
the ``cookies`` property. If one of these fails after an upgrade, fix
synthetic_exporter/http/_httpx_adapter.py (or clients.py) before lifting the httpx pin.
"""

from __future__ import annotations

import random

import httpx
import pytest

from synthetic_exporter.http import _httpx_adapter
from synthetic_exporter.http._httpx_adapter import PROBE_FAILURE, SUPPORTED, merge_plain_path
from synthetic_exporter.http.clients import TargetClient

UPGRADE = f"httpx {httpx.__version__} changed what synthetic_exporter/http/_httpx_adapter.py uses"


def test_the_fast_merge_is_on_for_the_installed_httpx() -> None:
    """The import-time probe passed: the fast path is in use, not silently turned off."""
    assert SUPPORTED, f"{UPGRADE}: {PROBE_FAILURE} (the fast URL merge is off)"


def test_httpx_urls_keep_their_parsed_form_as_a_named_tuple() -> None:
    url = httpx.URL("https://api.example.com:8443/v1/?q=1#f")
    assert hasattr(url, "_uri_reference"), f"{UPGRADE}: httpx.URL has no _uri_reference"
    parsed = url._uri_reference
    fields = ("scheme", "userinfo", "host", "port", "path", "query", "fragment")
    assert getattr(parsed, "_fields", None) == fields, f"{UPGRADE}: ParseResult fields changed"
    moved = parsed._replace(path="/v2/x", query=None)
    assert str(_httpx_adapter._url_from_parsed(moved)) == "https://api.example.com:8443/v2/x#f"


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8080", "https://api.example.com/v1/", "http://[::1]:9/a%7Eb/"]
)
def test_the_fast_merge_gives_httpx_s_own_url_on_sample_paths(base: str) -> None:
    """A sample of plain paths: the parse-free URL equals httpx's merge, field by field."""
    rng = random.Random(base)
    alphabet = "abcXYZ019-._~!$&'()*+,;=:@%/"
    client = httpx.AsyncClient(base_url=base)
    applied = 0
    for _ in range(300):
        path = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        query = "?" + "".join(rng.choice(alphabet + "?") for _ in range(rng.randint(0, 8)))
        url = path + (query if rng.random() < 0.5 else "")
        merged = merge_plain_path(client.base_url, url)
        if merged is None:  # a dot segment or "//": httpx merges those itself
            assert "//" in url or any(s in (".", "..") for s in path.split("/")), url
            continue
        applied += 1
        expected = client.build_request("GET", url).url
        assert merged._uri_reference == expected._uri_reference, f"{UPGRADE}: {url}"
        assert str(merged) == str(expected), url
    assert applied > 200


async def test_every_request_goes_through_build_request() -> None:
    """``get``, ``request`` and ``stream`` call ``build_request`` (where the fast merge is)."""
    built: list[str] = []

    class Counting(TargetClient):
        def build_request(
            self, method: str, url: httpx.URL | str, **options: object
        ) -> httpx.Request:
            built.append(method)
            return super().build_request(method, url, **options)

    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=str(request.url)))
    async with Counting(base_url="http://api.example.com/v1", transport=transport) as client:
        assert (await client.get("/a?b=1")).text == "http://api.example.com/v1/a?b=1"
        await client.request("POST", "/c")
        async with client.stream("DELETE", "/d") as response:
            await response.aread()
    assert built == ["GET", "POST", "DELETE"], f"{UPGRADE}: requests bypass build_request"


async def test_httpx_stores_and_sends_cookies_through_the_cookies_property() -> None:
    """Set-Cookie lands in the client's (cheaper) jar and goes back on the next request."""
    sent: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"})

    transport = httpx.MockTransport(handle)
    async with TargetClient(base_url="http://api.example.com", transport=transport) as client:
        await client.get("/login")
        await client.get("/after")
        assert client.cookies["session"] == "abc", f"{UPGRADE}: cookies bypass the property"
    assert sent == [None, "session=abc"], f"{UPGRADE}: cookies not sent from the property"


def test_a_broken_internal_turns_the_fast_merge_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the parsed form is gone, the probe says why and httpx merges every URL itself."""

    def gone(url: httpx.URL) -> object:
        raise AttributeError("'URL' object has no attribute '_uri_reference'")

    monkeypatch.setattr(_httpx_adapter, "_parsed", gone)
    assert "_uri_reference" in _httpx_adapter.probe()
    monkeypatch.setattr(_httpx_adapter, "SUPPORTED", False)
    client = TargetClient(base_url="https://api.example.com/v1")
    assert merge_plain_path(client.base_url, "/orders") is None
    assert client.build_request("GET", "/orders?x=1").url == "https://api.example.com/v1/orders?x=1"
