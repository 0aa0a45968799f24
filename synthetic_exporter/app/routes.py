"""The agent's HTTP routes: metrics, health, probes, JSON API and a status page.

Routes only read what result consumers keep (registry, health, history); the one that acts,
``POST /api/v1/run``, hands names to a trigger and returns what comes back.
"""

from __future__ import annotations

import hmac
import math
import os
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from synthetic_exporter.app.http_limits import RECEIVED_AT, Turns
from synthetic_exporter.app.pages import page_routes
from synthetic_exporter.core.results import SuiteResult, to_jsonable
from synthetic_exporter.exporter import artifacts
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History
from synthetic_exporter.exporter.run_store import RunStore, empty_store

NO_STORE = {"Cache-Control": "no-store"}
# An artifact is shown as a file of its own, never as a page of this origin.
ARTIFACT_HEADERS = {
    "Cache-Control": "private, no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
Trigger = Callable[[list[str]], Awaitable[list[SuiteResult]]]


@dataclass(slots=True, kw_only=True)
class AgentState:
    """What the routes read; ``ready`` and ``alive`` are set by the agent as it starts.

    ``render_metrics`` turns an Accept header, whether to gzip and when the request came (see
    :mod:`synthetic_exporter.exporter.exposition_cache`) into the exposition and its content type.
    """

    render_metrics: Callable[[str | None, bool, float | None], Awaitable[tuple[bytes, str]]]
    health: Health
    history: History
    suites: list[str]
    trigger: Trigger
    admin_token: str | None
    environment: str = "default"
    ready: bool = False
    alive: Callable[[], bool] = field(default=lambda: True)
    why_not_alive: Callable[[], str] = field(default=lambda: "scheduler stopped")
    store: RunStore = field(default_factory=empty_store)
    """The durable run history (``/api/v1/runs``); by default an empty one."""


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


class QueryError(Exception):
    """A query parameter the route does not take, or a value it cannot use: a 400."""


async def _bad_query(request: Request, exc: Exception) -> Response:
    return _json({"error": str(exc)}, 400)


Endpoint = Callable[[Request], Awaitable[Response]]


def takes(endpoint: Endpoint, *names: str, repeatable: Collection[str] = ()) -> Endpoint:
    """Return ``endpoint`` taking only the query parameters ``names``.

    Each is taken once unless ``repeatable``; any other raises :class:`QueryError`.
    """

    async def checked(request: Request) -> Response:
        seen: set[str] = set()
        for name, _ in request.query_params.multi_items():
            if name not in names:
                raise QueryError(f"unknown query parameter {name[:100]!r}")
            if name in seen and name not in repeatable:
                raise QueryError(f"query parameter {name!r} given more than once")
            seen.add(name)
        return await endpoint(request)

    return checked


def whole_number(text: str | None, name: str, maximum: int) -> int | None:
    """Return ``text`` as a whole number from 1 to ``maximum`` (``None`` if absent)."""
    # Only ASCII digits: str.isdigit() also accepts '²' and other scripts' digits.
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and 1 <= int(text) <= maximum):
        raise QueryError(f"{name} must be a whole number from 1 to {maximum}")
    return int(text)


def instant(text: str | None, name: str) -> float | None:
    """Return ``text``, unix seconds or an RFC 3339 time with a zone, as unix seconds."""
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
    problem = f"{name} must be unix seconds or an RFC 3339 time, e.g. 2026-12-07T16:00:00Z"
    try:
        when = datetime.fromisoformat(text) if len(text) <= 40 else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise QueryError(problem)
    return when.timestamp()


RUNS_PAGE_MAX = 500
RUN_FILTERS = ("suite", "test", "outcome", "since", "until", "limit", "cursor")


def create_app(state: AgentState) -> Starlette:
    """Return the agent's ASGI app."""

    async def metrics(request: Request) -> Response:
        compress = accepts_gzip(request.headers.get("accept-encoding", ""))
        received_at = getattr(request.state, RECEIVED_AT, None)
        accept = request.headers.get("accept")
        body, content_type = await state.render_metrics(accept, compress, received_at)
        headers = {"Vary": "Accept-Encoding"}
        if compress:
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=content_type, headers=headers)

    async def healthz(request: Request) -> Response:
        status, body = state.health.report()
        if request.method == "HEAD":
            return Response(status_code=status, headers=NO_STORE)
        return _json(body, status, NO_STORE)

    async def healthy(request: Request) -> Response:
        alive = state.alive()
        return _json({"status": "ok" if alive else state.why_not_alive()}, 200 if alive else 503)

    async def ready(request: Request) -> Response:
        ok = state.ready
        return _json({"status": "ready" if ok else "starting"}, 200 if ok else 503)

    async def results(request: Request) -> Response:
        return _json(state.history.results(), headers=NO_STORE)

    async def runs(request: Request) -> Response:
        query = request.query_params
        suite = query.get("suite")
        if suite is not None and suite not in state.suites:
            raise QueryError(f"unknown suite {suite[:100]!r}")
        read = partial(
            state.store.runs,
            suite=suite,
            test=query.get("test"),
            outcome=query.get("outcome"),
            since=instant(query.get("since"), "since"),
            until=instant(query.get("until"), "until"),
            cursor=query.get("cursor"),
            limit=whole_number(query.get("limit"), "limit", RUNS_PAGE_MAX) or 50,
        )
        try:
            page, following = await anyio.to_thread.run_sync(read)
        except ValueError as exc:  # an outcome or cursor the store cannot use
            raise QueryError(str(exc)) from None
        return _json({"runs": page, "next": following}, headers=NO_STORE)

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        found = await anyio.to_thread.run_sync(state.store.run, run_id)
        if found is None:  # a run that finished a moment ago may not be written yet
            recent = (r for r in reversed(state.history.runs) if r.run_id == run_id)
            found = next((to_jsonable(r) for r in recent), None)
        if found is None:
            return _json({"error": f"unknown run {run_id[:100]!r}"}, 404, NO_STORE)
        return _json(found, headers=NO_STORE)

    async def artifact(request: Request) -> Response:
        run_id, test_dir = request.path_params["run_id"], request.path_params["test"]
        name = request.path_params["name"]

        def locate() -> tuple[str, os.stat_result] | None:
            found = state.store.run(run_id)
            if found is None:  # written a moment later: the run is still in memory
                recent = (r for r in reversed(state.history.runs) if r.run_id == run_id)
                found = next((to_jsonable(r) for r in recent), None)
            path = None if found is None else artifacts.find(artifacts_dir, found, test_dir, name)
            try:
                return None if path is None else (str(path), path.stat())
            except OSError:
                return None

        artifacts_dir = state.store.artifacts_dir
        located = await anyio.to_thread.run_sync(locate)
        if located is None:
            error = f"no artifact {name[:100]!r} of test {test_dir[:100]!r} in run {run_id[:100]!r}"
            return _json({"error": error}, 404, NO_STORE)
        path, stat = located
        return FileResponse(
            path,
            stat_result=stat,
            media_type=artifacts.content_type(name),
            headers=ARTIFACT_HEADERS,
            filename=name,
            content_disposition_type="inline" if artifacts.is_inline(name) else "attachment",
        )

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

    return Starlette(
        routes=[
            *page_routes(state, takes),  # /, /runs/{id}, /tests/{suite}/{test}, badges, /static
            Route("/metrics", takes(metrics)),
            Route("/healthz", takes(healthz), methods=["GET", "HEAD"]),
            Route("/-/healthy", takes(healthy), methods=["GET", "HEAD"]),
            Route("/-/ready", takes(ready), methods=["GET", "HEAD"]),
            Route("/api/v1/results", takes(results)),
            Route("/api/v1/runs", takes(runs, *RUN_FILTERS)),
            Route("/api/v1/runs/{run_id}", takes(run)),
            Route(
                "/runs/{run_id}/artifacts/{test}/{name}",
                takes(artifact),
                methods=["GET", "HEAD"],
            ),
            Route("/api/v1/run", takes(run_now, "suite", repeatable={"suite"}), methods=["POST"]),
        ],
        exception_handlers={QueryError: _bad_query},
        middleware=[Middleware(Turns)],  # few answers at once: no bursts ahead of the scheduler
    )
