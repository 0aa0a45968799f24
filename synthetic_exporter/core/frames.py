"""Which stack frames belong to check code (not the agent, not a library)."""

from __future__ import annotations

import linecache
import sysconfig
import textwrap
import traceback
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = str(Path(__file__).parent.parent)  # the whole synthetic_exporter package
LIBRARY_DIRS = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")})


def in_check_code(filename: str) -> bool:
    """Tell whether a frame's file is check code: not the agent's, a library's or generated."""
    return not filename.startswith((PACKAGE_DIR, *LIBRARY_DIRS, "<"))


def check_frames(frames: Iterable[traceback.FrameSummary]) -> list[traceback.FrameSummary]:
    """Return the frames of a stack or traceback that point into check code, in order."""
    return [f for f in frames if in_check_code(f.filename)]


STATEMENT_MAX_LINES = 12
"""Source lines shown for one frame; a longer statement ends with ``...``."""


def statement_lines(frame: traceback.FrameSummary) -> list[str]:
    """Return the frame's whole statement (all its lines, dedented), as pytest shows it.

    Python's own traceback shows only a statement's first line: a multi-line ``assert``
    would lose its right-hand side.
    """
    first, last = frame.lineno or 0, frame.end_lineno or frame.lineno or 0
    source = linecache.getlines(frame.filename)
    lines = [line.rstrip("\n") for line in source[first - 1 : max(first, last)]]
    if not lines or not any(line.strip() for line in lines):
        return [frame.line] if frame.line else []
    dedented = textwrap.dedent("\n".join(lines)).splitlines()
    if len(dedented) > STATEMENT_MAX_LINES:
        dedented = [*dedented[: STATEMENT_MAX_LINES - 1], "..."]
    return dedented


def format_frames(frames: Iterable[traceback.FrameSummary]) -> str:
    """Format frames as Python does, but with each frame's whole statement."""
    parts: list[str] = []
    for frame in frames:
        parts.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        parts.extend(f"    {line}" for line in statement_lines(frame))
    return "\n".join(parts)
