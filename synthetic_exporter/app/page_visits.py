"""A browser test's pages and artifacts on the run page, from the run's JSON: no HTML, no I/O.

Runs stored before browser checks existed have neither field: they show no table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from synthetic_exporter.app.charts import milliseconds
from synthetic_exporter.core.results import PAGE_PHASES, PAGE_VITALS, dir_of_test

HIT = frozenset({"Hit", "RefreshHit"})
IMAGES = (".png", ".jpg", ".jpeg", ".webp")
NONE = "—"


@dataclass(frozen=True, slots=True, kw_only=True)
class PageRow:
    """One page a test visited: a row of the run page's "Pages" table."""

    target: str
    path: str
    status: str
    phases: tuple[tuple[str, str], ...]
    """``(phase, "50 ms")`` for each phase that happened, in :data:`PAGE_PHASES` order."""
    vitals: Mapping[str, str]
    """:data:`PAGE_VITALS` as text (``—`` when not measured)."""
    cls: str
    requests: int
    transfer: str
    hit_ratio: str
    """Share of the responses a CDN answered that came from its cache (``—``: none did)."""
    error: str


@dataclass(frozen=True, slots=True)
class ArtifactLink:
    """A file kept for the test run: an image shown inline, or a download (a trace)."""

    name: str
    url: str
    kind: str
    """``image``, ``trace`` (a Playwright trace) or ``file``."""


def size(count: float) -> str:
    """Return a byte count as ``830 B``, ``12.4 KiB`` or ``1.20 MiB``."""
    if count < 1024:
        return f"{count:.0f} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024 / 1024:.2f} MiB"


def hit_ratio(assets: list[Mapping[str, Any]]) -> str:
    """Return the share of a page's CDN-answered responses that were cache hits."""
    cached = sum(a["responses"] for a in assets if a["cache"] != "none")
    hits = sum(a["responses"] for a in assets if a["cache"] in HIT)
    return f"{hits / cached * 100:.0f}% of {cached}" if cached else NONE


def page_row(page: Mapping[str, Any]) -> PageRow:
    """Return one page visit (a ``PageRecord`` as JSON) as a table row."""
    phases, vitals = page.get("phases", {}), page.get("vitals", {})
    cls = page.get("cls")
    status = page.get("status")
    return PageRow(
        target=str(page.get("target", "")),
        path=str(page.get("path", "")),
        status=NONE if status is None else str(status),
        phases=tuple((p, milliseconds(phases[p])) for p in PAGE_PHASES if p in phases),
        vitals={v: milliseconds(vitals[v]) if v in vitals else NONE for v in PAGE_VITALS},
        cls=NONE if cls is None else f"{cls:.3f}",
        requests=int(page.get("requests", 0)),
        transfer=size(page.get("transfer_bytes", 0)),
        hit_ratio=hit_ratio(list(page.get("assets", ()))),
        error=str(page.get("error", "")),
    )


def artifact_url(run_id: str, test: str, name: str) -> str:
    """Return the route of one of a test run's artifacts."""
    parts = (run_id, "artifacts", dir_of_test(test), name)
    return "/runs/" + "/".join(quote(part, safe="") for part in parts)


def kind_of(name: str) -> str:
    """Return how the run page shows an artifact: ``image``, ``trace`` (a zip) or ``file``."""
    lower = name.lower()
    return "image" if lower.endswith(IMAGES) else "trace" if lower.endswith(".zip") else "file"


def artifact_links(run_id: str, test: Mapping[str, Any]) -> tuple[ArtifactLink, ...]:
    """Return links to a test run's artifacts, images first."""
    links = [
        ArtifactLink(
            name,
            artifact_url(run_id, test["name"], name),
            kind_of(name),
        )
        for name in test.get("artifacts", ())
    ]
    return tuple(sorted(links, key=lambda link: link.kind != "image"))
