"""Jinja2 templates for the status pages, autoescaped: every value is escaped unless marked."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from synthetic_exporter.app.assets import asset_url
from synthetic_exporter.app.page_model import TestRow, bar_title
from synthetic_exporter.app.waterfall import LEGEND

TEMPLATES = Environment(
    loader=PackageLoader("synthetic_exporter.app", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@lru_cache(maxsize=65_536)
def bar_link(run_id: str, outcome: str, started_at: float, duration: float, anchor: str) -> str:
    """Return one bar as an escaped link to its run (a run's bar never changes: cached)."""
    href = escape(f"/runs/{quote(run_id)}#{anchor}")
    title = escape(bar_title(outcome, started_at, duration))
    return f'<a class="bar o-{escape(outcome)}" href="{href}" title="{title}"></a>'


def bar_links(row: TestRow) -> Markup:
    """Return a test's bars as links to their runs.

    Built here rather than by a template macro, and cached per bar: a page has up to 30 a test,
    and each is the same on every refresh until it scrolls away.
    """
    return Markup(
        "".join(
            [
                bar_link(bar.run_id, bar.outcome, bar.started_at, bar.duration_seconds, row.anchor)
                for bar in row.bars
            ]
        )
    )


TEMPLATES.filters["bar_links"] = bar_links
TEMPLATES.globals.update(static_url=asset_url, legend=LEGEND, live_url="")


def render(template: str, **context: Any) -> str:
    """Return a template rendered with ``context``."""
    return TEMPLATES.get_template(template).render(**context)
