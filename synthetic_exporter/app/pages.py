"""The status pages' routes: ``/``, ``/runs/{id}``, ``/tests/{suite}/{test}``, badges, static.

Pages read the in-memory health and latest results and the durable run store (blocking reads,
in a worker thread). ``?fragment=1`` returns only a page's live region, which ``live.js``
fetches every 5 s. Each route takes only its own query parameters (checked by the ``check``
that :func:`page_routes` is given: the API's ``takes``, so an unknown one is a 400 there too).
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from synthetic_exporter.app.assets import asset_response
from synthetic_exporter.app.badges import environment_badge, suite_badge
from synthetic_exporter.app.page_model import (
    BARS,
    DAY,
    WEEK,
    Key,
    RunPoint,
    StoredHistory,
    index_page,
    run_page,
    test_page,
)
from synthetic_exporter.core.results import to_jsonable
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History


def render(template: str, **values: Any) -> str:
    """Render a page template; Jinja2 is imported on the first page asked for, not at start-up.

    An agent that only Prometheus talks to never loads it (about 3 MiB of its idle RSS).
    """
    from synthetic_exporter.app.rendering import render as render_template

    return render_template(template, **values)


SECURITY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
PAGE_HEADERS = {"Cache-Control": "no-store", **SECURITY}
BADGE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
SVG = "image/svg+xml; charset=utf-8"
TEST_PAGE_RUNS = 100
GZIP_LEVEL = 5  # 4.5 MiB of HTML (1,000 tests) in about 20 ms, to about a twentieth


class RunSource(Protocol):
    """The run store's reads the pages use (blocking)."""

    def run(self, run_id: str) -> dict[str, Any] | None:
        """Return a full suite run."""
        ...

    def test_runs(self, suite: str, test: str, limit: int) -> Sequence[RunPoint]:
        """Return a test's last runs, newest first."""
        ...

    def recent_test_runs(self, limit: int) -> Mapping[Key, Sequence[RunPoint]]:
        """Return every test's last runs, newest first."""
        ...

    def uptimes(self, since: float) -> Mapping[Key, float]:
        """Return each test's share of ok runs since ``since``."""
        ...

    def failing_since(self) -> Mapping[Key, float]:
        """Return when each failing test's current failure began."""
        ...


class PageState(Protocol):
    """What the pages read from the agent's state."""

    @property
    def health(self) -> Health:
        """The ``/healthz`` state."""
        ...

    @property
    def history(self) -> History:
        """The latest results, in memory."""
        ...

    @property
    def store(self) -> RunSource:
        """The durable run store."""
        ...

    @property
    def environment(self) -> str:
        """The environment's name."""
        ...


def stored_history(store: RunSource, now: float, recent: bool = True) -> StoredHistory:
    """Read what the index needs from the store (blocking)."""
    return StoredHistory(
        recent=store.recent_test_runs(BARS) if recent else {},
        uptime_day=store.uptimes(now - DAY),
        uptime_week=store.uptimes(now - WEEK),
        failing_since=store.failing_since(),
    )


def _html(body: str | bytes, status: int = 200, gzipped: bool = False) -> Response:
    headers = {**PAGE_HEADERS, "Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(body, status_code=status, media_type="text/html", headers=headers)


def wants_gzip(accept_encoding: str) -> bool:
    """Tell whether an ``Accept-Encoding`` header takes gzip (``q=0`` refuses it)."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        if coding.strip() in ("gzip", "*"):
            quality = params.replace(" ", "").removeprefix("q=")
            return not (params and quality.replace(".", "").strip("0") == "")
    return False


async def _rendered(request: Request, build: Callable[[], str | None]) -> Response | None:
    """Build a page (store reads, model, template, gzip) off the event loop; ``None``: 404."""
    compress = wants_gzip(request.headers.get("accept-encoding", ""))

    def work() -> bytes | None:
        html = build()
        if html is None:
            return None
        body = html.encode()
        return gzip.compress(body, GZIP_LEVEL) if compress else body

    body = await anyio.to_thread.run_sync(work)
    return None if body is None else _html(body, gzipped=compress)


def _badge(request: Request, svg: str) -> Response:
    """Return a badge; 304 when the client's copy (``If-None-Match``) is still the same."""
    etag = '"' + hashlib.sha256(svg.encode()).hexdigest()[:16] + '"'
    headers = {**BADGE_HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(svg, media_type=SVG, headers=headers)


def _not_found(state: PageState, what: str) -> Response:
    return _html(render("not_found.html", what=what, environment=state.environment), 404)


def _live(request: Request, template: str, fragment: str) -> tuple[str, dict[str, Any]]:
    """Choose a live page's template, or only its live region's when ``?fragment=1``."""
    if request.query_params.get("fragment") == "1":
        return fragment, {}
    return template, {"live_url": request.url.path + "?fragment=1"}


def _memory_run(history: History, run_id: str) -> dict[str, Any] | None:
    """Return a run still in memory (the store writes in the background, a moment later)."""
    found = next((r for r in reversed(history.runs) if r.run_id == run_id), None)
    return None if found is None else dict(to_jsonable(found))


Endpoint = Callable[[Request], Awaitable[Response]]


class QueryCheck(Protocol):
    """Wraps an endpoint so that it takes only the query parameters ``names``."""

    def __call__(self, endpoint: Endpoint, *names: str) -> Endpoint:
        """Return the wrapped endpoint."""
        ...


def _unchecked(endpoint: Endpoint, *names: str) -> Endpoint:
    return endpoint


def page_routes(state: PageState, check: QueryCheck = _unchecked) -> list[Route]:
    """Return the pages' routes over ``state``, their query parameters checked by ``check``."""

    async def index(request: Request) -> Response:
        now = time.time()
        _, health = state.health.report(now)
        latest = state.history.results()["suites"]  # copies: safe to read in a thread
        template, extra = _live(request, "index.html", "index_main.html")

        def build() -> str:  # store reads, model and template, off the event loop
            page = index_page(
                health=health,
                latest=latest,
                stored=stored_history(state.store, now),
                environment=state.environment,
                now=now,
            )
            return render(template, page=page, environment=state.environment, **extra)

        response = await _rendered(request, build)
        return response or _not_found(state, "")  # never: the index always renders

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        in_memory = _memory_run(state.history, run_id)

        def build() -> str | None:
            found = state.store.run(run_id) or in_memory
            if found is None:
                return None
            page = run_page(found, time.time())
            return render("run.html", page=page, environment=state.environment)

        return await _rendered(request, build) or _not_found(
            state, f"No run {run_id!r} is stored (older runs are deleted)."
        )

    async def test(request: Request) -> Response:
        suite, name = request.path_params["suite"], request.path_params["test"]
        now = time.time()
        latest = state.history.latest.get(suite)
        known = latest is not None and any(t.name == name for t in latest.tests)
        template, extra = _live(request, "test.html", "test_main.html")

        def build() -> str | None:
            runs = state.store.test_runs(suite, name, TEST_PAGE_RUNS)
            if not runs and not known:
                return None
            page = test_page(suite, name, runs, stored_history(state.store, now, recent=False), now)
            return render(template, page=page, environment=state.environment, **extra)

        return await _rendered(request, build) or _not_found(
            state, f"No test {suite}/{name} has run."
        )

    async def environment_svg(request: Request) -> Response:
        _, health = state.health.report()
        return _badge(request, environment_badge(state.environment, health["suites"]))

    async def suite_svg(request: Request) -> Response:
        suite = request.path_params["suite"]
        _, health = state.health.report()
        if suite not in health["suites"]:
            return Response("unknown suite", status_code=404, media_type="text/plain")
        return _badge(request, suite_badge(suite, health["suites"][suite]))

    async def static(request: Request) -> Response:
        return asset_response(
            request.path_params["name"],
            request.query_params.get("v"),
            request.headers.get("if-none-match"),
        )

    return [
        Route("/", check(index, "fragment")),
        Route("/runs/{run_id}", check(run)),
        Route("/tests/{suite}/{test:path}", check(test, "fragment")),
        Route("/badge.svg", check(environment_svg)),
        Route("/badges/{suite}.svg", check(suite_svg)),
        Route("/static/{name}", check(static, "v")),
    ]
