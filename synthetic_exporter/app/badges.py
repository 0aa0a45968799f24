"""Shields-style SVG badges: the environment's status and each suite's.

Text widths are estimated (about 6.5 px a character at 11 px Verdana), which is close enough
for short labels; every text is XML-escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

COLOURS = {
    "passing": "#2e7d32",
    "failing": "#c62828",
    "stale": "#ef6c00",
    "pending": "#757575",
    "skipped": "#757575",
}
LABEL_COLOUR = "#555"


def _width(text: str) -> int:
    return round(len(text) * 6.5) + 10


def badge(label: str, message: str, colour: str) -> str:
    """Return a flat badge ``label | message`` as SVG text."""
    left, right = _width(label), _width(message)
    total = left + right
    title = quoteattr(f"{label}: {message}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img"'
        f" aria-label={title}><title>{escape(label)}: {escape(message)}</title>"
        f'<rect width="{left}" height="20" fill="{LABEL_COLOUR}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif"'
        ' font-size="11">'
        f'<text x="{left / 2}" y="14">{escape(label)}</text>'
        f'<text x="{left + right / 2}" y="14">{escape(message)}</text></g></svg>'
    )


def environment_badge(environment: str, suites: Mapping[str, str]) -> str:
    """Return the environment's badge from the ``/healthz`` suite statuses.

    ``failing 1/5`` when a suite failed, ``stale`` or ``pending`` next, else ``passing 5/5``
    (suites skipped because of a failure count as not passing).
    """
    total = len(suites)
    passing = sum(1 for s in suites.values() if s == "pass")
    present = set(suites.values())
    word = next(
        (
            w
            for s, w in (("fail", "failing"), ("stale", "stale"), ("pending", "pending"))
            if s in present
        ),
        "passing",
    )
    if word == "failing":
        message = f"failing {sum(1 for s in suites.values() if s == 'fail')}/{total}"
    else:
        message = f"{word} {passing}/{total}"
    return badge(f"synthetic {environment}", message, COLOURS[word])


SUITE_WORDS = {"pass": "passing", "fail": "failing"}


def suite_badge(suite: str, status: str) -> str:
    """Return one suite's badge from its ``/healthz`` status."""
    word = SUITE_WORDS.get(status, status)
    return badge(suite, word, COLOURS.get(word, COLOURS["pending"]))
