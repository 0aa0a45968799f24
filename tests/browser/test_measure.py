"""Page measurements from navigation timing entries and vitals reports (no browser)."""

from __future__ import annotations

from synthetic_exporter.browser.measure import origin, phases, vitals
from synthetic_exporter.browser.page import own_routes

NEW_TLS_CONNECTION = {
    "domainLookupStart": 2.0,
    "domainLookupEnd": 12.0,
    "connectStart": 12.0,
    "secureConnectionStart": 20.0,
    "connectEnd": 45.0,
    "requestStart": 45.5,
    "responseStart": 145.5,
    "responseEnd": 165.5,
    "domContentLoadedEventEnd": 365.5,
    "loadEventEnd": 1365.5,
}


def test_phases_of_a_new_tls_connection_take_their_own_time() -> None:
    assert phases(NEW_TLS_CONNECTION) == {
        "dns": 0.01,
        "connect": 0.008,
        "tls": 0.025,
        "ttfb": 0.1,
        "download": 0.02,
        "dom_content_loaded": 0.2,
        "load": 1.0,
    }


def test_a_reused_connection_and_an_unfinished_load_have_no_such_phases() -> None:
    reused = {
        **NEW_TLS_CONNECTION,
        "domainLookupStart": 1.0,
        "domainLookupEnd": 1.0,
        "connectStart": 1.0,
        "connectEnd": 1.0,
        "secureConnectionStart": 0.0,
        "loadEventEnd": 0.0,  # the page closed before its load event ended
    }
    assert set(phases(reused)) == {"ttfb", "download", "dom_content_loaded"}


def test_vitals_are_seconds_and_need_a_paint() -> None:
    assert vitals({"fcp": 250.0, "lcp": 1250.0, "tbt": 120.0, "cls": 0.1}) == {
        "fcp": 0.25,
        "lcp": 1.25,
        "tbt": 0.12,
    }
    assert vitals({"fcp": None, "lcp": None, "tbt": 0, "cls": 0}) == {}


def test_origins_spell_out_default_ports() -> None:
    assert origin("https://Shop.example.com/a?b") == "https://shop.example.com:443"
    assert origin("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080"
    assert origin("data:text/plain,x") == ""


def test_own_routes_match_the_target_origin_as_playwright_spells_it() -> None:
    assert own_routes("https://shop.example.com:443/base") == "https://shop.example.com/**"
    assert own_routes("http://127.0.0.1:8080") == "http://127.0.0.1:8080/**"
    assert own_routes("http://[::1]:9000/api") == "http://[::1]:9000/**"
