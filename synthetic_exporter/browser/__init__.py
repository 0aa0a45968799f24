"""Browser checks: one shared Chromium, fresh contexts, page measurements (``t.page()``).

Importable without Playwright (the ``[browser]`` extra): Playwright is imported when the first
page opens.
"""

from synthetic_exporter.browser.extra import MISSING, playwright_installed, uses_page
from synthetic_exporter.browser.page import PageOrder, open_page
from synthetic_exporter.browser.pool import BrowserError, BrowserPool, BrowserStats

__all__ = [
    "MISSING",
    "BrowserError",
    "BrowserPool",
    "BrowserStats",
    "PageOrder",
    "open_page",
    "playwright_installed",
    "uses_page",
]
