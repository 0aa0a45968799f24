"""A small web site under uvicorn on 127.0.0.1 for browser tests.

``/`` is a page with a stylesheet, a script, an image (its largest content) and one slow
asset; assets answer with CloudFront's cache headers. The server records the marker header
and cookies of every request it sees.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.uvicorn_thread import serve_in_thread

SLOW_ASSET_SECONDS = 0.3
IMAGE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="300">'
    '<rect width="600" height="300" fill="#3a7"/></svg>'
)
PAGE = """<!doctype html>
<html><head><title>Shop</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="stylesheet" href="/static/slow.css">
<script src="/static/app.js"></script>
</head><body>
<h1 id="title">Shop</h1>
<p id="greeting">Hello</p>
<img src="/static/hero.svg" width="600" height="300" alt="hero">
</body></html>"""
# A 300 ms task once the page has painted (blocking time counts from the first contentful paint:
# on a busy machine the paint may come after the load event).
BUSY_PAGE = """<!doctype html><html><body><h1>Busy</h1><script>
new PerformanceObserver((list, observer) => {
  if (!list.getEntries().some((e) => e.name === "first-contentful-paint")) return;
  observer.disconnect();
  setTimeout(() => {
    const end = performance.now() + 300;
    while (performance.now() < end);
    setTimeout(() => { window.busyDone = true; }, 100);
  }, 100);
}).observe({ type: "paint", buffered: true });
</script></body></html>"""
CDN = {"x-cache": "Hit from cloudfront", "x-amz-cf-pop": "LHR61-P1", "cache-control": "max-age=60"}


@dataclass
class Site:
    """The site's URL, and what it saw."""

    url: str = ""
    markers: dict[str, list[str]] = field(default_factory=dict)
    """Marker header values seen, by path ("" when absent)."""
    cookies: dict[str, list[str]] = field(default_factory=dict)
    """Cookie header values seen, by path."""
    api_keys: dict[str, list[str]] = field(default_factory=dict)
    """X-Api-Key header values seen, by path."""
    hang_started: threading.Event = field(default_factory=threading.Event)


def site_app(site: Site) -> Starlette:
    """Return the site's application."""

    def seen(request: Request) -> None:
        path = request.url.path
        site.markers.setdefault(path, []).append(request.headers.get("x-synthetic-test", ""))
        site.cookies.setdefault(path, []).append(request.headers.get("cookie", ""))
        site.api_keys.setdefault(path, []).append(request.headers.get("x-api-key", ""))

    async def index(request: Request) -> Response:
        seen(request)
        return HTMLResponse(PAGE)

    async def mixed(request: Request) -> Response:
        seen(request)
        images = "".join(
            f'<img src="{request.query_params[name]}/static/hero.svg" alt="{name}">'
            for name in ("cdn", "third")
        )
        return HTMLResponse(f"<!doctype html><html><body>{images}</body></html>")

    async def busy(request: Request) -> Response:
        seen(request)
        return HTMLResponse(BUSY_PAGE)

    async def static(request: Request) -> Response:
        seen(request)
        name = request.path_params["name"]
        if name == "slow.css":
            await asyncio.sleep(SLOW_ASSET_SECONDS)
            return Response("p { color: #333 }", media_type="text/css", headers=CDN)
        if name == "style.css":
            return Response("h1 { font: 20px sans-serif }", media_type="text/css", headers=CDN)
        if name == "app.js":
            miss = {**CDN, "x-cache": "Miss from cloudfront"}
            return Response("window.loaded = true;", media_type="text/javascript", headers=miss)
        if name == "hero.svg":
            return Response(IMAGE, media_type="image/svg+xml", headers=CDN)
        return Response("not found", status_code=404)

    async def login(request: Request) -> Response:
        seen(request)
        response = HTMLResponse("<p>signed in</p>")
        response.set_cookie("session", "s3cret-session", httponly=True)
        return response

    async def whoami(request: Request) -> Response:
        seen(request)
        return HTMLResponse(f"<p id='cookie'>{request.headers.get('cookie', 'none')}</p>")

    async def hang(request: Request) -> Response:
        seen(request)
        site.hang_started.set()
        await asyncio.sleep(60)
        return HTMLResponse("late")

    return Starlette(
        routes=[
            Route("/", index),
            Route("/busy", busy),
            Route("/mixed", mixed),
            Route("/static/{name}", static),
            Route("/login", login),
            Route("/whoami", whoami),
            Route("/hang", hang),
        ]
    )


@contextmanager
def serve_site() -> Iterator[Site]:
    """Serve the site under uvicorn in a thread; stop it afterwards."""
    site = Site()
    with serve_in_thread(site_app(site), timeout_graceful_shutdown=1) as port:
        site.url = f"http://127.0.0.1:{port}"
        yield site
