"""CDN: static files through the CDN match the origin, and the edge caches them.

Targets: ``cdn`` is the distribution (e.g. ``https://static.example.com``, or ``<demo>/cdn``)
and ``origin`` the bucket it serves (e.g. ``https://my-bucket.s3.eu-west-2.amazonaws.com``,
or ``<demo>/origin``). Each object is fetched straight from the origin, then through the edge:

- both answer 200 with the same bytes and ETag (a stale edge after a deploy shows here);
- the edge names its cache status and POP (CloudFront's ``X-Cache`` and ``X-Amz-Cf-Pop``; the
  agent also records them for every request, per POP);
- a second fetch of the same object is a ``Hit``: if it is not, the distribution has stopped
  caching (a cache-policy or Cache-Control regression) and every customer pays the origin's
  latency.

The first fetch may be a Miss or RefreshHit (cold or expired edge): that is normal. Without
both targets configured, the tests are skipped.
"""

from __future__ import annotations

import hashlib

from _models import EdgeHeaders, OriginHeaders, parse_headers
from _targets import require_targets

from synthetic_exporter import Suite, T

suite = Suite("cdn", timeout="30s", tags=["cdn"])

# Spread over more than one POP of the demo edge.
OBJECTS = ("assets/logo.svg", "assets/app.js", "downloads/report.pdf")


def _digest(content: bytes) -> str:
    return f"{len(content)} bytes, sha256 {hashlib.sha256(content).hexdigest()[:16]}"


@suite.test
async def origin_serves_objects(t: T) -> None:
    """Each object comes straight from the origin, with S3's headers."""
    require_targets(t, "cdn", "origin")
    origin = t.client("origin")
    for key in OBJECTS:
        r = await origin.get(f"/{key}")
        assert r.status_code == 200, f"origin {key}: {r.status_code} {r.text[:200]}"
        headers = parse_headers(OriginHeaders, r)
        t.state[key] = (_digest(r.content), headers.etag)


@suite.test
async def edge_matches_origin(t: T) -> None:
    """Through the edge, each object has the origin's bytes and ETag."""
    require_targets(t, "cdn", "origin")
    cdn = t.client("cdn")
    for key in OBJECTS:
        r = await cdn.get(f"/{key}")
        edge = parse_headers(EdgeHeaders, r)
        assert r.status_code == 200, f"edge {key}: {r.status_code} ({edge.x_cache} at {edge.pop})"
        digest, etag = t.state[key]
        assert _digest(r.content) == digest, f"edge and origin bytes of {key} differ"
        assert edge.etag == etag, f"stale edge copy of {key}"
        t.log(f"{key}: {edge.x_cache} at {edge.pop}")


@suite.test
async def second_fetch_is_a_hit(t: T) -> None:
    """Fetched again, each object is served from the edge's cache."""
    require_targets(t, "cdn", "origin")
    cdn = t.client("cdn")
    for key in OBJECTS:
        r = await cdn.get(f"/{key}")
        assert r.status_code == 200, f"edge {key}: {r.status_code}"
        edge = parse_headers(EdgeHeaders, r)
        # RefreshHit: the copy expired between the two fetches and the edge revalidated it.
        cached = ("Hit from cloudfront", "RefreshHit from cloudfront")
        assert edge.x_cache in cached, f"{key} was not cached at {edge.pop}"
        if edge.x_cache == cached[0]:
            assert edge.age is not None, f"{key}: a cached answer without Age"
