"""What a page visit measured: navigation timing, Web Vitals, responses, bytes, CDN assets.

An init script (:data:`INIT_SCRIPT`) runs in every document before its own scripts and keeps
the Web Vitals that PerformanceObservers report (buffered, so nothing is missed): first and
largest contentful paint, cumulative layout shift (largest session window: shifts less than
1 s apart within 5 s, without recent input), and long tasks for total blocking time (the
part over 50 ms of each long task that starts after the first contentful paint). Its
``read()`` returns them with the document's navigation timing entry.

A document is read at its load event and when the page closes. A document cannot be read
once a navigation away from it has started (Playwright and CDP evaluate in the next one), so
the script also keeps its last report in the tab's ``sessionStorage`` at ``pagehide``, where
the next document of the same origin finds it. A document left for another origin before its
load event's read arrived keeps its responses, without timing or vitals; one left before its
first paint (the load event may come first) has no FCP or LCP.

Responses are counted on the Python side as they arrive (:class:`PageMeter`): each main-frame
navigation opens a new document, and every response counts towards the current one; for the
document's subresources the CDN cache status and edge are read from their headers
(:func:`synthetic_exporter.http.cdn.classify`) and attributed to the target whose origin served
them (``other`` for third parties).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from synthetic_exporter.core.results import PAGE_VITALS, AssetCount, PageRecord
from synthetic_exporter.http.cdn import classify

if TYPE_CHECKING:
    from playwright.async_api import Page, Request, Response

OTHER = "other"
READ_TIMEOUT = 2.0
"""Seconds a document's measurements may take to be read before a navigation leaves it."""
READ_FUNCTION = "window.__syntheticExporter ? window.__syntheticExporter.read() : null"

INIT_SCRIPT = """
(() => {
  if (window.__syntheticExporter || window !== window.top) return;
  const s = {fcp: null, lcp: null, cls: 0, win: 0, first: 0, last: -1e9, tasks: []};
  const observers = [];
  const observe = (type, each) => {
    try {
      const observer = new PerformanceObserver((list) => list.getEntries().forEach(each));
      observer.observe({type, buffered: true});
      observers.push([observer, each]);
    } catch (e) { /* not supported by this browser */ }
  };
  // Entries not yet delivered to their callback (observers report asynchronously): a read
  // right after the load event would miss a paint that happened just before it.
  const flush = () => observers.forEach(([o, each]) => o.takeRecords().forEach(each));
  observe('paint', (e) => { if (e.name === 'first-contentful-paint') s.fcp = e.startTime; });
  observe('largest-contentful-paint', (e) => { s.lcp = e.startTime; });
  observe('layout-shift', (e) => {
    if (e.hadRecentInput) return;
    if (e.startTime - s.last < 1000 && e.startTime - s.first < 5000) { s.win += e.value; }
    else { s.win = e.value; s.first = e.startTime; }
    s.last = e.startTime;
    s.cls = Math.max(s.cls, s.win);
  });
  observe('longtask', (e) => { s.tasks.push([e.startTime, e.duration]); });
  const KEY = '__syntheticExporter';
  const report = () => {
    flush();
    const nav = performance.getEntriesByType('navigation')[0];
    const tbt = s.fcp === null ? 0 : s.tasks
      .filter(([start]) => start >= s.fcp)
      .reduce((sum, [, duration]) => sum + Math.max(duration - 50, 0), 0);
    return {url: location.href, origin: performance.timeOrigin, nav: nav ? nav.toJSON() : null,
            fcp: s.fcp, lcp: s.lcp, cls: s.cls, tbt};
  };
  const left = () => {
    try { return JSON.parse(sessionStorage.getItem(KEY) || '[]'); } catch (e) { return []; }
  };
  addEventListener('pagehide', () => {
    try { sessionStorage.setItem(KEY, JSON.stringify([...left(), report()].slice(-20))); }
    catch (e) { /* storage refused */ }
  });
  window.__syntheticExporter = {read: () => ({...report(), left: left()})};
})();
"""


def origin(url: str) -> str:
    """Return ``scheme://host:port`` of a URL (default ports spelled out), or ``""``."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return ""
    if not parts.hostname or port is None:
        return ""
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _path(url: str) -> str:
    """Return the path of a URL without query or fragment."""
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


def phases(nav: Mapping[str, Any]) -> dict[str, float]:
    """Return the navigation phases (seconds each) of a PerformanceNavigationTiming entry.

    dns, connect and tls only when they took time (a reused connection has none); ttfb is
    request start to response start, download the response's body; dom_content_loaded is
    response end to the end of DOMContentLoaded, load the rest until the load event's end.
    """

    def span(start: str, end: str) -> float | None:
        a, b = float(nav.get(start) or 0.0), float(nav.get(end) or 0.0)
        return (b - a) / 1000 if a > 0 and b >= a else None

    found: dict[str, float] = {}
    secure = float(nav.get("secureConnectionStart") or 0.0)
    connect_end = "secureConnectionStart" if secure > 0 else "connectEnd"
    for name, start, end in (
        ("dns", "domainLookupStart", "domainLookupEnd"),
        ("connect", "connectStart", connect_end),
        ("tls", "secureConnectionStart", "connectEnd"),
    ):
        value = span(start, end)
        if value:
            found[name] = value
    for name, start, end in (
        ("ttfb", "requestStart", "responseStart"),
        ("download", "responseStart", "responseEnd"),
        ("dom_content_loaded", "responseEnd", "domContentLoadedEventEnd"),
        ("load", "domContentLoadedEventEnd", "loadEventEnd"),
    ):
        value = span(start, end)
        if value is not None:
            found[name] = round(value, 6)
    return {k: round(v, 6) for k, v in found.items()}


def vitals(report: Mapping[str, Any]) -> dict[str, float]:
    """Return the Web Vitals (seconds) that a document's report holds."""
    found = {}
    for name in PAGE_VITALS:
        value = report.get(name)
        if isinstance(value, int | float) and (name == "tbt" or value > 0):
            found[name] = round(float(value) / 1000, 6)
    if "fcp" not in found:
        found.pop("tbt", None)  # no paint: no blocking time either
    return found


@dataclass(slots=True)
class _Document:
    """One main-frame document of a page, as its responses arrive."""

    url: str
    status: int | None
    started_at: float
    requests: int = 0
    transfer_bytes: int = 0
    assets: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    report: Mapping[str, Any] | None = None
    time_origin: float | None = None
    """The document's ``performance.timeOrigin``: who it is, among reports."""
    error: str = ""


@dataclass(slots=True)
class PageMeter:
    """Counts the responses of one page by document; builds its :class:`PageRecord` values.

    ``targets`` maps each target's origin to its name; ``target`` is the page's own.
    """

    target: str
    targets: Mapping[str, str]
    documents: list[_Document] = field(default_factory=list)
    _pending: set[asyncio.Future[None]] = field(default_factory=set)

    def attach(self, page: Page) -> None:
        """Listen to the page's responses and load events."""
        page.on("response", lambda response: self.on_response(page, response))
        page.on("requestfailed", lambda request: self.on_failure(page, request))
        page.on("load", lambda _: self._spawn(self._read_loaded(page)))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _read_loaded(self, page: Page) -> None:
        with contextlib.suppress(Exception):  # navigated on, or closed
            async with asyncio.timeout(READ_TIMEOUT):
                self.on_report(await page.evaluate(READ_FUNCTION))

    def on_response(self, page: Page, response: Response) -> None:
        """Count one response towards the current document (a new one for a navigation)."""
        request = response.request
        main = False
        with contextlib.suppress(Exception):  # a service worker's request has no frame
            main = request.is_navigation_request() and request.frame == page.main_frame
        if main:
            current = self.documents[-1] if self.documents else None
            redirect = current is not None and 300 <= (current.status or 0) < 400
            if current is not None and redirect:  # the next hop of a redirect: same document
                current.url, current.status = response.url, response.status
            else:
                self.documents.append(_Document(response.url, response.status, time.time()))
        if not self.documents:
            return  # before the first navigation (about:blank)
        document = self.documents[-1]
        document.requests += 1
        length = response.headers.get("content-length", "")
        if length.isdigit():
            document.transfer_bytes += int(length)
        else:
            self._spawn(self._add_size(document, response))
        if not main:
            cache, pop = classify(response.headers)
            owner = self.targets.get(origin(response.url), OTHER)
            document.assets[(owner, pop, cache)] += 1

    def on_failure(self, page: Page, request: Request) -> None:
        """Record a main-frame navigation that got no response (refused, reset, aborted)."""
        with contextlib.suppress(Exception):  # a service worker's request has no frame
            if request.is_navigation_request() and request.frame == page.main_frame:
                failed = _Document(request.url, None, time.time(), requests=1)
                failed.error = request.failure or "failed"
                self.documents.append(failed)

    async def _add_size(self, document: _Document, response: Response) -> None:
        with contextlib.suppress(Exception):  # the page or browser went away
            sizes = await response.request.sizes()
            document.transfer_bytes += max(int(sizes["responseBodySize"]), 0)

    def on_report(self, report: Any) -> None:
        """Take a read: the current document's report and those kept by the ones left."""
        if not isinstance(report, dict):
            return
        left = report.get("left")
        for earlier in left if isinstance(left, list) else []:
            if isinstance(earlier, dict):
                self._match(earlier, self.documents)
        self._match(report, self.documents[::-1])

    def _match(self, report: dict[str, Any], order: list[_Document]) -> None:
        """Give ``report`` to its document.

        That is the one with its time origin, else the first in ``order`` with its URL and none.
        """
        known = [d for d in order if d.time_origin == report.get("origin")]
        candidates = known or [d for d in order if d.time_origin is None]
        for document in candidates:
            if document.url == report.get("url"):
                document.report, document.time_origin = report, report.get("origin")
                return

    async def finish(self, page: Page, seconds: float) -> None:
        """Read the current document again, wait (bounded) for the byte counts and reads."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(seconds):
                self.on_report(await page.evaluate(READ_FUNCTION))
                if self._pending:
                    await asyncio.wait(set(self._pending))
        for task in list(self._pending):
            task.cancel()

    def records(self) -> list[PageRecord]:
        """Return one record per document the page loaded, in order."""
        found = []
        for document in self.documents:
            report = document.report or {}
            nav = report.get("nav")
            cls = report.get("cls")
            found.append(
                PageRecord(
                    target=self.targets.get(origin(document.url), OTHER),
                    path=_path(document.url),
                    status=document.status,
                    phases=phases(nav) if isinstance(nav, dict) else {},
                    vitals=vitals(report),
                    cls=round(float(cls), 6) if isinstance(cls, int | float) else None,
                    requests=document.requests,
                    transfer_bytes=document.transfer_bytes,
                    assets=tuple(
                        AssetCount(target=t, pop=p, cache=c, responses=n)
                        for (t, p, c), n in sorted(document.assets.items())
                    ),
                    error=document.error,
                    started_at=document.started_at,
                )
            )
        return found
