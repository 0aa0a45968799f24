"""The demo's small web app: a storefront and a dashboard, stored in the origin bucket.

The files (``webapp/``: two HTML pages, a stylesheet, two scripts and five SVG images) become
objects under ``app/`` of the S3-like origin, so the CloudFront-like edge serves them at
``/cdn/app/`` (``index.html`` for a key ending in ``/``, as an S3 website endpoint does) and the
origin at ``/origin/app/``. ``dashboard.html`` fetches JSON from the demo API on the same origin:
``/health``, and with the session that ``sessionStorage["demo-session"]`` holds
(``{"token": ..., "customer_id": ...}``), the customer and their invoices.

The hero image (``app/img/hero.svg``, 960x360) is the pages' largest contentful paint: a fault
that delays it (``{"path": "/cdn/app/img/hero.svg", "delay_ms": 3000}``) moves LCP by as much.
"""

from __future__ import annotations

from importlib import resources

PREFIX = "app/"
INDEX = "index.html"
HERO = f"{PREFIX}img/hero.svg"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def webapp_files() -> list[tuple[str, bytes, str]]:
    """Return the web app's objects as (key under ``app/``, body, content type), sorted by key."""
    root = resources.files("synthetic_exporter.demo").joinpath("webapp")
    found: list[tuple[str, bytes, str]] = []
    pending = [(root, PREFIX)]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((entry, f"{prefix}{entry.name}/"))
                continue
            suffix = entry.name[entry.name.rfind(".") :]
            if suffix in CONTENT_TYPES:
                found.append((f"{prefix}{entry.name}", entry.read_bytes(), CONTENT_TYPES[suffix]))
    return sorted(found)


def index_key(key: str) -> str:
    """Map a folder key (``""``, ``app/``) to its ``index.html``, as S3 website hosting does."""
    return f"{key}{INDEX}" if key == "" or key.endswith("/") else key
