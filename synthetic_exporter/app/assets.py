"""The pages' static files (CSS, JS), served by the agent itself: no CDN, no fonts.

URLs carry a content hash (``/static/status.css?v=1a2b3c4d``): with the current hash a file is
cacheable for a year, since a new version gets a new URL; without it, for a minute.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from starlette.responses import Response

MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
FOREVER = "public, max-age=31536000, immutable"
SHORT = "public, max-age=60"


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file: its bytes, media type and content hash."""

    body: bytes
    media_type: str
    version: str


def load_assets() -> dict[str, Asset]:
    """Read every static file of the package."""
    found = {}
    for entry in (files("synthetic_exporter.app") / "static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in MEDIA_TYPES:
            body = entry.read_bytes()
            version = hashlib.sha256(body).hexdigest()[:12]
            found[entry.name] = Asset(body, MEDIA_TYPES[suffix], version)
    return found


ASSETS = load_assets()


def asset_url(name: str) -> str:
    """Return a static file's URL with its content hash."""
    return f"/static/{name}?v={ASSETS[name].version}"


def asset_response(name: str, version: str | None, if_none_match: str | None) -> Response:
    """Return a static file (304 when the client has it, 404 when there is no such file)."""
    asset = ASSETS.get(name)
    if asset is None:
        return Response("no such file", status_code=404, media_type="text/plain")
    etag = f'"{asset.version}"'
    headers = {
        "ETag": etag,
        "Cache-Control": FOREVER if version == asset.version else SHORT,
        "X-Content-Type-Options": "nosniff",
    }
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
