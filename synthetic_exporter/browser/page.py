"""The work of ``t.page()``: a fresh context on a target, measured, traced, always closed.

The context's base URL is the target's ``BASE_URL`` (with a ``/`` added: ``page.goto("/x")``
resolves like a link, so a relative ``"x"`` keeps a base path). The marker header
``X-Synthetic-Test: <environment>`` goes on every request the page makes, added by Chromium
itself (``extra_http_headers``): a route would hold each request for a round trip to Python
and back, about 5 ms a request, inside the page's timings. A target's default ``HEADERS``
(credentials, often) go only to that target's origin, for every configured target that has
them (the page's own wins a shared origin), by a route: never to third parties. Default
timeouts are the test's remaining time plus :data:`GRACE`, so that the test's own time limit
ends a hanging page (a ``timeout`` result).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from synthetic_exporter.browser import artifacts
from synthetic_exporter.browser.measure import INIT_SCRIPT, PageMeter, origin
from synthetic_exporter.browser.shielded import run_to_end
from synthetic_exporter.core.logs import redact
from synthetic_exporter.core.results import PageRecord
from synthetic_exporter.http.clients import MARKER_HEADER

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page, Request, Route

    from synthetic_exporter.browser.pool import BrowserPool
    from synthetic_exporter.core.settings import Settings

GRACE = 1.0
"""Seconds past the test's deadline that Playwright's own timeouts wait."""
FINISH_TIMEOUT = 2.0
"""Seconds the page's measurements may take to be read as it closes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PageOrder:
    """What a test's page needs from the runner: target, budget, and where results go."""

    settings: Settings
    target: str
    deadline: float
    """The test's deadline, on anyio's clock."""
    record: Callable[[PageRecord], None]
    failing: Callable[[BaseException | None], bool]
    """Whether the test is failing, given the exception leaving the page (if any)."""
    artifacts_dir: Path | None
    redact: Callable[[str], str]


def own_routes(base_url: str) -> str:
    """Return the glob of every URL on the origin of ``base_url`` (as Playwright spells it)."""
    parts = urlsplit(base_url)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.netloc.rsplit("@", 1)[-1].lower()
    if parts.port == default:
        host = host.rsplit(":", 1)[0]
    return f"{parts.scheme}://{host}/**"


def _adding(extra: dict[str, str]) -> Callable[[Route, Request], Awaitable[None]]:
    """Return a route handler that adds ``extra`` (a target's HEADERS) to a request."""

    async def add_headers(route: Route, request: Request) -> None:
        headers = await request.all_headers()
        await route.continue_(headers={**headers, **extra})

    return add_headers


def _header_values(settings: Settings) -> list[str]:
    """Return the values of the targets' HEADERS (masked in traces, as in messages)."""
    return [value for target in settings.targets.values() for value in target.headers.values()]


def _origins(settings: Settings, own: str) -> dict[str, str]:
    """Map each target's origin to its name; the page's own target wins a shared origin."""
    found = {origin(t.base_url): name for name, t in settings.targets.items()}
    found[origin(settings.targets[own].base_url)] = own
    return found


@asynccontextmanager
async def open_page(pool: BrowserPool, order: PageOrder) -> AsyncIterator[Page]:
    """Open a page on ``order.target`` in a fresh context; record it and close it afterwards."""
    target = order.settings.targets[order.target]
    origins = _origins(order.settings, order.target)
    meter = PageMeter(target=order.target, targets=_origins(order.settings, order.target))
    remaining = max(order.deadline - anyio.current_time(), 0.0)
    async with pool.context(
        base_url=f"{target.base_url}/",
        ignore_https_errors=not target.verify,
        extra_http_headers={MARKER_HEADER: order.settings.environment},
    ) as context:
        timeout_ms = (remaining + GRACE) * 1000
        context.set_default_timeout(timeout_ms)
        context.set_default_navigation_timeout(timeout_ms)
        for name in dict.fromkeys(origins.values()):
            headers = order.settings.targets[name].headers
            if headers:
                base_url = order.settings.targets[name].base_url
                await context.route(own_routes(base_url), _adding(headers))
        await context.add_init_script(INIT_SCRIPT)
        if order.artifacts_dir is not None:
            await context.tracing.start(screenshots=True, snapshots=True)
        page = await context.new_page()
        meter.attach(page)
        error: BaseException | None = None
        try:
            yield page
        except BaseException as exc:
            error = exc
            raise
        finally:
            await run_to_end(_close_page(order, meter, page, context, order.failing(error)))


async def _close_page(
    order: PageOrder, meter: PageMeter, page: Page, context: BrowserContext, failing: bool
) -> None:
    """Record the page's documents; keep a screenshot and the trace if the test is failing."""
    await meter.finish(page, FINISH_TIMEOUT)
    for record in meter.records():
        order.record(_redacted(record, order.redact))
    if order.artifacts_dir is not None and failing:
        values = _header_values(order.settings)
        mask = lambda text: redact(order.redact(text), values)  # noqa: E731
        await artifacts.save(page, context, order.artifacts_dir, mask)
    elif order.artifacts_dir is not None:
        with anyio.move_on_after(FINISH_TIMEOUT), contextlib.suppress(Exception):
            await context.tracing.stop()


def _redacted(record: PageRecord, redact: Callable[[str], str]) -> PageRecord:
    """Return ``record`` with secret values masked in its path and error."""
    return replace(record, path=redact(record.path), error=redact(record.error))
