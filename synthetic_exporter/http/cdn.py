"""Which CDN answered, from the cache (Hit, Miss, ...) and edge location (POP) it reports.

Recognised: CloudFront (``X-Cache: Hit from cloudfront``, ``X-Amz-Cf-Pop: LHR61-P1``),
Cloudflare (``CF-Cache-Status: HIT``, ``CF-Ray: 8c1f...-LHR``) and Fastly
(``X-Cache: MISS, HIT``, ``X-Served-By: cache-iad-kiad7000025-IAD, cache-lhr7380-LHR``;
with shielding the last entry is the edge that answered). Values are folded into small,
bounded sets so that they can be metric labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

NONE = "none"
UNKNOWN = "unknown"
CACHE_VALUES = ("Hit", "Miss", "RefreshHit", "Error", "Pass", "Other", NONE)

CLOUDFRONT = {
    "hit": "Hit",
    "miss": "Miss",
    "refreshhit": "RefreshHit",
    "error": "Error",
}
CLOUDFLARE = {
    "hit": "Hit",
    "stale": "Hit",
    "updating": "Hit",
    "miss": "Miss",
    "expired": "Miss",
    "revalidated": "RefreshHit",
    "bypass": "Pass",
    "dynamic": "Pass",
}
FASTLY = {"hit": "Hit", "miss": "Miss", "pass": "Pass", "hitpass": "Pass", "error": "Error"}
POP_CODE = re.compile(r"^[A-Za-z]{3}$")


def _pop(code: str) -> str:
    """Return a three-letter location code, upper case, or 'unknown'."""
    code = code.strip()
    return code.upper() if POP_CODE.match(code) else UNKNOWN


def _cloudfront(headers: Mapping[str, str]) -> tuple[str, str] | None:
    x_cache = headers.get("x-cache", "")
    if "cloudfront" not in x_cache.lower() and "x-amz-cf-pop" not in headers:
        return None
    status = x_cache.split(" from ", 1)[0].strip().lower()
    cache = CLOUDFRONT.get(status, "Other" if status else NONE)
    pop = headers.get("x-amz-cf-pop", "")
    return cache, _pop(pop[:3]) if pop else UNKNOWN


def _cloudflare(headers: Mapping[str, str]) -> tuple[str, str] | None:
    status = headers.get("cf-cache-status")
    ray = headers.get("cf-ray")
    if status is None and ray is None:
        return None
    cache = CLOUDFLARE.get((status or "").strip().lower(), "Other" if status else NONE)
    pop = _pop(ray.rsplit("-", 1)[-1]) if ray and "-" in ray else UNKNOWN
    return cache, pop


def _fastly(headers: Mapping[str, str]) -> tuple[str, str] | None:
    served_by = headers.get("x-served-by", "")
    if not served_by.startswith("cache-"):
        return None
    edge = served_by.split(",")[-1].strip()
    status = headers.get("x-cache", "").split(",")[-1].strip().lower()
    cache = FASTLY.get(status, "Other" if status else NONE)
    return cache, _pop(edge.rsplit("-", 1)[-1])


# Every header the parsers above read (lower case).
CDN_HEADERS = frozenset({"x-cache", "x-amz-cf-pop", "cf-cache-status", "cf-ray", "x-served-by"})


def cdn_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Return the CDN headers of a raw header list, lower-cased, repeats joined with ``", "``.

    One pass over the raw list: cheaper than case-insensitive lookups on ``httpx.Headers``.
    """
    found: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key in CDN_HEADERS:
            text = value.decode("latin-1")
            found[key] = f"{found[key]}, {text}" if key in found else text
    return found


def classify(headers: Mapping[str, str]) -> tuple[str, str]:
    """Return ``(cache, pop)`` for a response; ``("none", "none")`` when no CDN is recognised.

    ``headers`` must look names up case-insensitively (``httpx.Headers`` does), or hold lower-case
    names only (:func:`cdn_headers`).
    """
    for parse in (_cloudfront, _cloudflare, _fastly):
        found = parse(headers)
        if found is not None:
            return found
    return NONE, NONE
