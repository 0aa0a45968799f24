"""Jinja2 templates for the status pages, autoescaped: every value is escaped unless marked."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from synthetic_exporter.app.assets import asset_url
from synthetic_exporter.app.waterfall import LEGEND

TEMPLATES = Environment(
    loader=PackageLoader("synthetic_exporter.app", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals.update(static_url=asset_url, legend=LEGEND, live_url="")


def render(template: str, **context: Any) -> str:
    """Return a template rendered with ``context``."""
    return TEMPLATES.get_template(template).render(**context)
