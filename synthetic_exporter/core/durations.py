"""Durations as seconds, written as numbers or Prometheus/Go-style strings ("90s", "1h30m")."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

__all__ = ["Duration", "PositiveDuration", "format_duration", "parse_duration"]

# Units largest first: a duration string must use them in this order, each at most once.
_UNITS: dict[str, float] = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN = re.compile(_NUMBER)
_PART = re.compile(rf"({_NUMBER})(ms|[dhms])")
_HINT = "use seconds or a string like '90s', '5m', '1h30m'"


def _invalid(value: object, reason: str = _HINT) -> ValueError:
    return ValueError(f"invalid duration {value!r}: {reason}")


def parse_duration(value: object) -> float:
    """Convert a number of seconds or a string like '1h30m' to seconds."""
    if isinstance(value, bool):
        raise _invalid(value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _invalid(value)
        if value < 0:
            raise _invalid(value, "must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise _invalid(value)
    text = value.strip()
    if text.startswith("-"):
        raise _invalid(value, "must not be negative")
    if _PLAIN.fullmatch(text):
        return float(text)
    total = 0.0
    position = 0
    previous = math.inf
    for match in _PART.finditer(text):
        scale = _UNITS[match.group(2)]
        if match.start() != position or scale >= previous:
            raise _invalid(value, f"{_HINT} (units largest first, each at most once)")
        total += float(match.group(1)) * scale
        position = match.end()
        previous = scale
    if not text or position != len(text):
        raise _invalid(value)
    return total


def format_duration(seconds: float) -> str:
    """Render seconds as a compact duration string such as '1m30s' or '250ms'."""
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format duration {seconds!r}")
    if seconds < 0:
        return "-" + format_duration(-seconds)
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s" if seconds == 0 else f"{seconds:g}s"
    parts: list[str] = []
    for unit, scale in _UNITS.items():
        size = round(scale * 1000)
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be greater than 0")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, given as a number or a string like '90s', '5m', '1h30m'."""

PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]
"""A `Duration` that must be greater than zero."""
