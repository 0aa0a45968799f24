"""CDN attribution from real response header samples of CloudFront, Cloudflare and Fastly."""

from __future__ import annotations

import httpx
import pytest

from synthetic_exporter.http.cdn import CACHE_VALUES, classify

SAMPLES = [
    # CloudFront
    (
        {
            "X-Cache": "Hit from cloudfront",
            "X-Amz-Cf-Pop": "LHR61-P1",
            "Via": "1.1 3c0a0c7b8f.cloudfront.net (CloudFront)",
        },
        ("Hit", "LHR"),
    ),
    ({"X-Cache": "Miss from cloudfront", "X-Amz-Cf-Pop": "FRA56-P3"}, ("Miss", "FRA")),
    ({"X-Cache": "RefreshHit from cloudfront", "X-Amz-Cf-Pop": "IAD89-C1"}, ("RefreshHit", "IAD")),
    ({"X-Cache": "Error from cloudfront", "X-Amz-Cf-Pop": "SFO53-P2"}, ("Error", "SFO")),
    ({"X-Cache": "LimitExceeded from cloudfront", "X-Amz-Cf-Pop": "NRT57-C4"}, ("Other", "NRT")),
    # Cloudflare
    ({"CF-Cache-Status": "HIT", "CF-RAY": "8c1f2e3b4d5a6f7e-LHR"}, ("Hit", "LHR")),
    ({"CF-Cache-Status": "MISS", "CF-RAY": "8c1f2e3b4d5a6f7e-AMS"}, ("Miss", "AMS")),
    ({"CF-Cache-Status": "DYNAMIC", "CF-RAY": "8c1f2e3b4d5a6f7e-SJC"}, ("Pass", "SJC")),
    ({"CF-Cache-Status": "REVALIDATED", "CF-RAY": "8c1f2e3b4d5a6f7e-CDG"}, ("RefreshHit", "CDG")),
    ({"CF-Cache-Status": "EXPIRED", "cf-ray": "7d3e1f-FRA"}, ("Miss", "FRA")),
    ({"CF-RAY": "8c1f2e3b4d5a6f7e-LHR"}, ("none", "LHR")),
    # Fastly (with shielding: the last entry is the edge that answered)
    (
        {
            "X-Cache": "MISS, HIT",
            "X-Served-By": "cache-iad-kiad7000025-IAD, cache-lhr7380-LHR",
            "X-Cache-Hits": "0, 1",
        },
        ("Hit", "LHR"),
    ),
    ({"X-Cache": "MISS", "X-Served-By": "cache-fra-eddf8230047-FRA"}, ("Miss", "FRA")),
    ({"X-Cache": "PASS", "X-Served-By": "cache-syd10142-SYD"}, ("Pass", "SYD")),
    # No CDN
    ({"Server": "nginx", "X-Cache": "HIT"}, ("none", "none")),
    ({}, ("none", "none")),
    # Odd edge codes are bounded
    ({"X-Cache": "Hit from cloudfront", "X-Amz-Cf-Pop": "12"}, ("Hit", "unknown")),
]


@pytest.mark.parametrize(("headers", "expected"), SAMPLES)
def test_cache_status_and_pop(headers: dict[str, str], expected: tuple[str, str]) -> None:
    cache, pop = classify(httpx.Headers(headers))
    assert (cache, pop) == expected
    assert cache in CACHE_VALUES
