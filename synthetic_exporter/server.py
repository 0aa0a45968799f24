"""The agent's HTTP routes: metrics, health, probes, JSON API and a status page.

Routes only read what result consumers keep (registry, health, history); the one that acts,
``POST /api/v1/run``, hands names to a trigger and returns what comes back.
"""

from __future__ import annotations

import gzip
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from synthetic_exporter.health import Health
from synthetic_exporter.history import History
from synthetic_exporter.results import SuiteResult, to_jsonable
from synthetic_exporter.status_page import render_status_page

NO_STORE = {"Cache-Control": "no-store"}
Trigger = Callable[[list[str]], Awaitable[list[SuiteResult]]]


@dataclass(slots=True)
class AgentState:
    """What the routes read; ``ready`` and ``alive`` are set by the agent as it starts.

    ``render_metrics`` turns an Accept header into the exposition and its content type.
    """

    render_metrics: Callable[[str | None], Awaitable[tuple[bytes, str]]]
    health: Health
    history: History
    suites: list[str]
    trigger: Trigger
    admin_token: str | None
    environment: str = "default"
    ready: bool = False
    alive: Callable[[], bool] = field(default=lambda: True)


# Prometheus asks for gzip; level 1 shrinks an exposition about tenfold for little CPU.
GZIP_LEVEL = 1


def accepts_gzip(accept_encoding: str) -> bool:
    """Tell whether an ``Accept-Encoding`` header accepts gzip (``q=0`` refuses it)."""
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "*"):
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(state: AgentState) -> Starlette:
    """Return the agent's ASGI app."""

    async def metrics(request: Request) -> Response:
        body, content_type = await state.render_metrics(request.headers.get("accept"))
        headers = {"Vary": "Accept-Encoding"}
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            # zlib releases the GIL: compressing in a worker thread leaves the loop alone.
            body = await anyio.to_thread.run_sync(gzip.compress, body, GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=content_type, headers=headers)

    async def healthz(request: Request) -> Response:
        status, body = state.health.report()
        if request.method == "HEAD":
            return Response(status_code=status, headers=NO_STORE)
        return _json(body, status, NO_STORE)

    async def healthy(request: Request) -> Response:
        alive = state.alive()
        return _json({"status": "ok" if alive else "scheduler stopped"}, 200 if alive else 503)

    async def ready(request: Request) -> Response:
        ok = state.ready
        return _json({"status": "ready" if ok else "starting"}, 200 if ok else 503)

    async def results(request: Request) -> Response:
        return _json(state.history.results(), headers=NO_STORE)

    async def runs(request: Request) -> Response:
        suite = request.query_params.get("suite")
        limit_text = request.query_params.get("limit")
        if limit_text is not None and not limit_text.isdigit():
            return _json({"error": "limit must be a whole number"}, 400)
        limit = int(limit_text) if limit_text is not None else None
        return _json(state.history.recent(suite, limit), headers=NO_STORE)

    async def run_now(request: Request) -> Response:
        if state.admin_token is None:
            return _json({"error": "disabled: set SYNTHETIC_ADMIN_TOKEN to enable"}, 403)
        # Behind basic auth the Authorization header carries the user's credentials, so the
        # token may also come in X-Admin-Token.
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        given = request.headers.get("x-admin-token") or (bearer if scheme == "Bearer" else "")
        if not given or not hmac.compare_digest(given.encode(), state.admin_token.encode()):
            return _json(
                {"error": "missing or wrong bearer token"},
                401,
                {"WWW-Authenticate": 'Bearer realm="synthetic-exporter"'},
            )
        wanted = request.query_params.getlist("suite") or list(state.suites)
        unknown = [n for n in wanted if n not in state.suites]
        if unknown:
            return _json({"error": f"unknown suite {unknown[0]!r}"}, 404)
        started = time.time()
        done = await state.trigger(wanted)
        ran = {r.suite for r in done}
        return _json(
            {
                "started_at": started,
                "ended_at": time.time(),
                "suites": [to_jsonable(r) for r in done],
                "already_running": [n for n in wanted if n not in ran],
            }
        )

    async def index(request: Request) -> Response:
        _, body = state.health.report()
        page = render_status_page(body, state.history.results(), state.environment)
        return HTMLResponse(page, status_code=200, headers=NO_STORE)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/metrics", metrics),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/-/healthy", healthy, methods=["GET", "HEAD"]),
            Route("/-/ready", ready, methods=["GET", "HEAD"]),
            Route("/api/v1/results", results),
            Route("/api/v1/runs", runs),
            Route("/api/v1/run", run_now, methods=["POST"]),
        ]
    )
