"""Whether the ``[browser]`` extra is installed, and whether a test needs it.

A test needs a browser when its code, or code nested in it (a subtest's function, a closure),
reads an attribute named ``page``: ``t.page(...)``. A helper function the test calls is not
looked into.
"""

from __future__ import annotations

import importlib.util
import types
from collections.abc import Callable
from typing import Any

MISSING = (
    "uses t.page() (a browser check), but Playwright is not installed:"
    " pip install 'synthetic-exporter[browser]' (and Chromium, e.g. apt-get install chromium)"
)


def playwright_installed() -> bool:
    """Return whether the ``playwright`` package can be imported."""
    try:
        return importlib.util.find_spec("playwright") is not None
    except (ImportError, ValueError):
        return False


def _reads_page(code: types.CodeType) -> bool:
    if "page" in code.co_names:
        return True
    return any(isinstance(c, types.CodeType) and _reads_page(c) for c in code.co_consts)


def uses_page(func: Callable[..., Any]) -> bool:
    """Return whether a test function's code reads ``.page`` (``t.page()``)."""
    code = getattr(func, "__code__", None)
    return isinstance(code, types.CodeType) and _reads_page(code)
