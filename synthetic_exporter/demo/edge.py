"""A CloudFront-like edge (``/cdn``) in front of an S3-like origin (``/origin``), in memory.

The origin answers like S3 (``Server: AmazonS3``, ``x-amz-request-id``, ``ETag``,
``Last-Modified``, XML errors) and honours ``If-None-Match``. The edge answers like CloudFront:

- ``X-Cache: Miss from cloudfront`` when it fetched the object from the origin;
- ``Hit from cloudfront`` while the cached copy is younger than its ``max-age`` (with ``Age``);
- ``RefreshHit from cloudfront`` when the copy had expired and the origin confirmed (304) that
  the ETag is unchanged;
- ``Error from cloudfront`` when the origin failed (its status is passed on; 504 on timeout).

Every edge response names its POP (``X-Amz-Cf-Pop``, chosen per key from a fixed list, so a
dashboard's POP breakdown shows several), a request id (``X-Amz-Cf-Id``) and ``Via``.

Faults injected on ``/origin`` also hit the edge's origin fetches (misses and refreshes), but not
its cache hits, just like a real origin outage behind a CDN. A fault on ``/edge-miss/<key
prefix>`` (e.g. ``{"path": "/edge-miss/app/"}``) makes the edge bypass its cache for those keys:
every request goes to the origin and answers ``Miss`` (a cache-policy regression).

The origin also holds the demo web app (:mod:`synthetic_exporter.demo.webapp`, under ``app/``);
a key ending in ``/`` serves its ``index.html``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Protocol
from xml.sax.saxutils import escape

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from synthetic_exporter.demo.pdf import one_page_pdf
from synthetic_exporter.demo.webapp import index_key, webapp_files

DEFAULT_POPS = ("LHR61-P1", "FRA56-P3")
DEFAULT_TTL_SECONDS = 60
CLOUDFRONT_DEFAULT_TTL = 86_400  # used when an object has no max-age
ORIGIN_TIMEOUT_SECONDS = 10.0
EDGE_MISS_PREFIX = "/edge-miss/"
MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*(\d+)", re.IGNORECASE)

Clock = Callable[[], float]


class FaultLike(Protocol):
    """What the edge needs to know about a fault injected on the origin."""

    @property
    def status(self) -> int | None:
        """The status the origin fails with, or None to answer normally."""

    @property
    def delay_ms(self) -> int:
        """How long the origin waits before answering, in milliseconds (0: no delay)."""


FaultFinder = Callable[[str, str], FaultLike | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredObject:
    """An object of the origin bucket."""

    key: str
    body: bytes
    content_type: str
    cache_control: str
    last_modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def etag(self) -> str:
        """S3's ETag of a single-part upload: the quoted MD5 of the body."""
        return f'"{hashlib.md5(self.body, usedforsecurity=False).hexdigest()}"'


def _logo_svg() -> bytes:
    circles = "\n".join(
        f'  <circle cx="{20 + (i * 37) % 220}" cy="{20 + (i * 53) % 220}" r="{4 + i % 9}"'
        f' fill="#{(i * 2654435761) % 0xFFFFFF:06x}" opacity="0.8"/>'
        for i in range(40)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="240" viewBox="0 0 240 240">\n'
        "  <title>Synthetic Widgets Ltd</title>\n"
        f"{circles}\n</svg>\n"
    ).encode()


def _app_js() -> bytes:
    lines = [
        "/* Synthetic Widgets storefront bundle (demo). */",
        '"use strict";',
        *(
            f"export function widget{i}(el) {{ el.dataset.widget = {i}; return el; }}"
            for i in range(60)
        ),
    ]
    return ("\n".join(lines) + "\n").encode()


def _report_pdf() -> bytes:
    text = "Synthetic Widgets Ltd annual report (demo)"
    return one_page_pdf(
        "\n".join(f"BT /F1 10 Tf 72 {760 - 12 * i} Td ({text}, line {i}) Tj ET" for i in range(50))
    )


def seed_objects(ttl: int = DEFAULT_TTL_SECONDS) -> dict[str, StoredObject]:
    """Return the origin bucket's objects: a few KB each, the same bytes (and ETags) each start."""
    cache_control = f"public, max-age={ttl}"
    seeds = [
        ("assets/logo.svg", _logo_svg(), "image/svg+xml"),
        ("assets/app.js", _app_js(), "text/javascript; charset=utf-8"),
        ("downloads/report.pdf", _report_pdf(), "application/pdf"),
        *webapp_files(),
    ]
    return {
        key: StoredObject(key=key, body=body, content_type=kind, cache_control=cache_control)
        for key, body, kind in seeds
    }


def pop_for(key: str, pops: tuple[str, ...]) -> str:
    """Return the POP that serves ``key``: fixed per key, spread over ``pops``."""
    return pops[zlib.crc32(key.encode()) % len(pops)]


def ttl_of(cache_control: str) -> int:
    """How long the edge may serve a copy without asking the origin."""
    match = MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else CLOUDFRONT_DEFAULT_TTL


def http_date(moment: datetime) -> str:
    """RFC 9110 date, as in Last-Modified."""
    return format_datetime(moment, usegmt=True)


def amz_request_id() -> str:
    """Return a new S3-style request id: 16 upper-case hex digits."""
    return secrets.token_hex(8).upper()


def cf_id() -> str:
    """Return a new CloudFront-style request id (56 URL-safe base64 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(40)).decode()[:54] + "=="


def via_for(pop: str) -> str:
    """CloudFront's Via: a stable host name per POP."""
    host = hashlib.sha256(pop.encode()).hexdigest()[:32]
    return f"1.1 {host}.cloudfront.net (CloudFront)"


@dataclass(slots=True)
class CachedCopy:
    """The edge's copy of an object."""

    obj: StoredObject
    stored_at: float  # clock() when fetched or last revalidated


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginAnswer:
    """What the edge got from the origin."""

    status: int
    obj: StoredObject | None = None
    body: bytes = b""
    content_type: str = "application/xml"


@dataclass(slots=True, kw_only=True)
class ObjectEdge:
    """The origin bucket, the edge cache, and their HTTP handlers."""

    find_fault: FaultFinder
    objects: dict[str, StoredObject] = field(default_factory=seed_objects)
    pops: tuple[str, ...] = DEFAULT_POPS
    clock: Clock = time.monotonic
    cache: dict[str, CachedCopy] = field(default_factory=dict)

    # origin

    def s3_error(self, status: int, code: str, message: str, key: str) -> OriginAnswer:
        """Return an S3-style XML error."""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<Key>{escape(key)}</Key><RequestId>{amz_request_id()}</RequestId></Error>"
        )
        return OriginAnswer(status=status, body=body.encode())

    def origin_lookup(self, key: str, if_none_match: str | None) -> OriginAnswer:
        """Return the origin's answer for a key: 200, 304 (ETag still matches) or 404."""
        obj = self.objects.get(index_key(key))
        if obj is None:
            return self.s3_error(404, "NoSuchKey", "The specified key does not exist.", key)
        if if_none_match is not None and obj.etag in (t.strip() for t in if_none_match.split(",")):
            return OriginAnswer(status=304, obj=obj)
        return OriginAnswer(status=200, obj=obj, body=obj.body, content_type=obj.content_type)

    def origin_headers(self, obj: StoredObject) -> dict[str, str]:
        """Headers S3 sends with an object."""
        return {
            "x-amz-id-2": base64.b64encode(secrets.token_bytes(48)).decode(),
            "x-amz-request-id": amz_request_id(),
            "Last-Modified": http_date(obj.last_modified),
            "ETag": obj.etag,
            "Cache-Control": obj.cache_control,
            "Accept-Ranges": "bytes",
            "Server": "AmazonS3",
        }

    async def get_origin_object(self, request: Request) -> Response:
        """``GET /origin/{key}``: the object, as S3 serves it."""
        key = str(request.path_params["key"])
        answer = self.origin_lookup(key, request.headers.get("if-none-match"))
        if answer.obj is None:
            headers = {"x-amz-request-id": amz_request_id(), "Server": "AmazonS3"}
            return Response(answer.body, answer.status, headers, answer.content_type)
        headers = self.origin_headers(answer.obj)
        if answer.status == 304:
            return Response(status_code=304, headers=headers)
        return Response(answer.body, 200, headers, answer.content_type)

    async def fetch_from_origin(self, key: str, if_none_match: str | None) -> OriginAnswer:
        """Ask the origin for a key as the edge does, subject to faults injected on ``/origin``."""
        fault = self.find_fault("GET", f"/origin/{key}")
        if fault is not None and fault.delay_ms:
            if fault.delay_ms / 1000 >= ORIGIN_TIMEOUT_SECONDS:
                await anyio.sleep(ORIGIN_TIMEOUT_SECONDS)
                return OriginAnswer(status=504, body=b"origin timed out", content_type="text/plain")
            await anyio.sleep(fault.delay_ms / 1000)
        if fault is not None and fault.status is not None:
            return OriginAnswer(
                status=fault.status, body=b"origin failed", content_type="text/plain"
            )
        return self.origin_lookup(key, if_none_match)

    # edge

    def edge_headers(self, key: str, cache: str) -> dict[str, str]:
        """Return the headers CloudFront adds to every response."""
        pop = pop_for(key, self.pops)
        return {
            "X-Cache": f"{cache} from cloudfront",
            "Via": via_for(pop),
            "X-Amz-Cf-Pop": pop,
            "X-Amz-Cf-Id": cf_id(),
        }

    def serve_copy(self, copy: CachedCopy, cache: str) -> Response:
        """Return a response from the edge's copy."""
        obj = copy.obj
        headers = {
            "ETag": obj.etag,
            "Last-Modified": http_date(obj.last_modified),
            "Cache-Control": obj.cache_control,
            "Server": "AmazonS3",
            **self.edge_headers(obj.key, cache),
        }
        if cache != "Miss":
            headers["Age"] = str(max(int(self.clock() - copy.stored_at), 0))
        return Response(obj.body, 200, headers, obj.content_type)

    async def get_cdn_object(self, request: Request) -> Response:
        """``GET /cdn/{key}``: the object through the edge cache."""
        key = str(request.path_params["key"])
        if self.find_fault("GET", f"{EDGE_MISS_PREFIX}{key}") is not None:
            return await self.bypass_cache(key)
        copy = self.cache.get(key)
        if copy is not None and self.clock() - copy.stored_at < ttl_of(copy.obj.cache_control):
            return self.serve_copy(copy, "Hit")
        answer = await self.fetch_from_origin(key, copy.obj.etag if copy else None)
        if answer.status == 304 and copy is not None:
            copy.stored_at = self.clock()
            return self.serve_copy(copy, "RefreshHit")
        if answer.status == 200 and answer.obj is not None:
            copy = CachedCopy(answer.obj, self.clock())
            self.cache[key] = copy
            return self.serve_copy(copy, "Miss")
        self.cache.pop(key, None)
        return self.edge_error(key, answer.status, answer.body, answer.content_type)

    async def bypass_cache(self, key: str) -> Response:
        """Fetch ``key`` from the origin without reading or filling the cache: a ``Miss``."""
        answer = await self.fetch_from_origin(key, None)
        if answer.status == 200 and answer.obj is not None:
            return self.serve_copy(CachedCopy(answer.obj, self.clock()), "Miss")
        return self.edge_error(key, answer.status, answer.body, answer.content_type)

    def edge_error(
        self, key: str, status: int, body: bytes = b"", content_type: str = "text/plain"
    ) -> Response:
        """Return an error as CloudFront sends it."""
        return Response(body, status, self.edge_headers(key, "Error"), content_type)

    def routes(self) -> list[Route]:
        """``/origin/{key}`` and ``/cdn/{key}`` (GET, and so HEAD)."""
        return [
            Route("/origin/{key:path}", self.get_origin_object, methods=["GET"]),
            Route("/cdn/{key:path}", self.get_cdn_object, methods=["GET"]),
        ]
