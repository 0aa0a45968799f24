"""The one place that relies on pytest internals: its explanations of failed comparisons.

A rewritten ``assert a == b`` asks ``_pytest.assertion.util._reprcompare`` (when set) to
explain the failed comparison. pytest sets it per test, from its plugin and a full ``Config``;
the agent has neither, so :func:`install` sets :func:`explain`, which calls
``_pytest.assertion.util.assertrepr_compare`` (keyword-only ``verbose``, ``highlighter``,
``assertion_text_diff_style`` and ``truncation_budget`` since pytest 9.2) with plain values:
verbosity 1 (pytest's ``-v``: "Differing items" and a "Full diff"), no colour, ndiff.

Under pytest (a check file loaded inside a pytest test) pytest's own hook is already set and
is kept. At import, :data:`SUPPORTED` is probed on a dict; where a pytest upgrade breaks it,
asserts fail with pytest's one-line message and tests/engine/test_assertions.py fails,
naming what changed.

Cost (measured in the agent's process, after the loader and ``rewrite`` are imported): importing
this module and its probe adds 0.23 MiB RSS and 2 ms, once; an explanation takes 0.12 ms, only
when an assert fails.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable
from typing import Any

from _pytest.assertion import util

MAX_EXPLANATION_LINES = 40
"""Lines pulled from pytest's (lazy) explanation; the runner bounds the message further."""

VERBOSITY = 1
# Hints that name pytest's command line, meaningless in the agent.
PYTEST_HINTS = (", use -vv to show", "Use -v to get more diff")


def _lines(op: str, left: object, right: object) -> Iterable[str]:
    """Return pytest's explanation of ``left op right``, lazily (empty when it has none)."""
    from _pytest.assertion._typing import TruncationBudget
    from _pytest.assertion.highlight import dummy_highlighter

    budget = TruncationBudget(max_lines=MAX_EXPLANATION_LINES, max_chars=80 * MAX_EXPLANATION_LINES)
    lines: Iterable[str] = util.assertrepr_compare(
        op=op,
        left=left,
        right=right,
        verbose=VERBOSITY,
        highlighter=dummy_highlighter,
        assertion_text_diff_style="ndiff",
        truncation_budget=budget,
    )
    return lines


def explanation_lines(op: str, left: object, right: object) -> list[str]:
    """Return pytest's explanation of a failed ``left op right`` as lines ([] when none)."""
    lines = itertools.islice(_lines(op, left, right), MAX_EXPLANATION_LINES + 1)
    kept: list[str] = []
    for line in lines:
        if line == PYTEST_HINTS[1]:
            continue
        kept.append(line.removesuffix(PYTEST_HINTS[0]))
    return kept


def explain(op: str, left: object, right: object) -> str | None:
    """Explain a failed comparison in the rewriter's format, as pytest's own hook does."""
    try:
        lines = explanation_lines(op, left, right)
    except Exception:  # a faulty __repr__ or a changed pytest: keep the one-line message
        return None
    if not lines:
        return None
    # The rewriter joins explanation lines with "\n~" and %-formats the result.
    return "\n~".join(line.replace("\n", "\\n") for line in lines).replace("%", "%%")


def _probe() -> bool:
    """Tell whether pytest's explanation works here (a dict with a differing item)."""
    with contextlib.suppress(Exception):
        text = explain("==", {"a": 1, "b": False}, {"a": 1, "b": True}) or ""
        return "Differing items:" in text and hasattr(util, "_reprcompare")
    return False


SUPPORTED = _probe()


def install() -> None:
    """Make rewritten asserts explain comparisons, unless something (pytest) already does."""
    if SUPPORTED and getattr(util, "_reprcompare", None) is None:
        hook: Any = explain
        util._reprcompare = hook
