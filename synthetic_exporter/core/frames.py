"""Which stack frames belong to check code (not the agent, not a library)."""

from __future__ import annotations

import sysconfig
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
