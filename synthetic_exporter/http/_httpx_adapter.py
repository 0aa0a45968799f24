"""The one place that relies on httpx internals: a URL built from its base's parsed form.

httpx merges ``client.get("/orders")`` with the base URL by parsing the path, then parsing
the merged URL again: about 30 µs of a request's 60 µs in ``build_request``, inside the
check's clock. No public API builds a URL from parts without parsing (``httpx.URL(str)``
parses once: 13 µs); :func:`merge_plain_path` builds it from the base's parsed form, which
``httpx.URL`` keeps in ``_uri_reference`` (a named tuple): 1.6 µs. docs/architecture.md,
"Private API of dependencies", has the figures.

At import, :data:`SUPPORTED` is probed: the attribute is there and the parse-free URL equals
httpx's own parse on sample paths. Where an httpx upgrade breaks that, the fast path turns
itself off (httpx merges every URL itself, correct but slower) and
tests/http/test_httpx_adapter.py fails, naming what changed.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

# An absolute path (and query) made only of characters httpx's URL parser keeps as they are
# (its PATH_SAFE and QUERY_SAFE sets, printable ASCII): such a URL parses to itself.
PLAIN_PATH_AND_QUERY = re.compile(r"/(?!/)[!$-;=@-_a-z|~]*(?:\?[!$-;=?-~]*)?")
PLAIN_URL_MAX_LENGTH = 4096
# (base, path) pairs the probe checks against httpx's own parse.
PROBES = (
    ("http://127.0.0.1:8080/", "/delay/0/m17?x=1"),
    ("https://api.example.com/v1/", "/orders/42"),
    ("http://[::1]:9/x/y/", "/a;b=c@d:e~f!$&'()*+,?q=1&r=/?"),
)


def _parsed(url: httpx.URL) -> Any:
    """Return ``url``'s parsed form (httpx's private ``ParseResult``)."""
    return url._uri_reference


def _url_from_parsed(parsed: Any) -> httpx.URL:
    """Return an ``httpx.URL`` holding ``parsed`` as it is, without parsing anything."""
    url = httpx.URL.__new__(httpx.URL)
    url._uri_reference = parsed
    return url


def _build(base: httpx.URL, url: str) -> httpx.URL | None:
    parsed = _parsed(base)
    if parsed.query is not None or parsed.fragment is not None or not parsed.host:
        return None
    if len(url) > PLAIN_URL_MAX_LENGTH or not PLAIN_PATH_AND_QUERY.fullmatch(url):
        return None
    path, separator, query = url.partition("?")
    if "." in path and any(segment in (".", "..") for segment in path.split("/")):
        return None
    return _url_from_parsed(
        parsed._replace(path=(parsed.path or "/") + path[1:], query=query if separator else None)
    )


def probe() -> str:
    """Return what no longer holds of what the fast path relies on in httpx, or ``""``."""
    try:
        for base, path in PROBES:
            built = _build(httpx.URL(base), path)
            expected = httpx.URL(base + path[1:])
            if built is None or built != expected or str(built) != str(expected):
                return f"{base} + {path} built {built!r}, httpx parses {expected!r}"
            if _parsed(built) != _parsed(expected):
                return f"{base} + {path}: parsed forms differ"
    except Exception as exc:  # an attribute renamed, a parsed form that is no named tuple...
        return f"{type(exc).__name__}: {exc}"
    return ""


PROBE_FAILURE = probe()
SUPPORTED = not PROBE_FAILURE


def merge_plain_path(base: httpx.URL, url: str) -> httpx.URL | None:
    """Return ``base`` merged with ``url`` as httpx merges them, without parsing, or ``None``.

    Only for the common case: ``url`` is a plain absolute path (and query) with no dot
    segments, ``base`` has a host and no query or fragment, and the probe passed. ``None``
    means: let httpx merge it.
    """
    if not SUPPORTED:
        return None
    return _build(base, url)
