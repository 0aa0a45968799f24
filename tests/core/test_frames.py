"""Which frames are check code, and how a frame's whole statement is shown."""

from __future__ import annotations

import traceback
from pathlib import Path

from synthetic_exporter.core import frames


def _frame(path: Path, first: int, last: int) -> traceback.FrameSummary:
    return traceback.FrameSummary(str(path), first, "check", end_lineno=last, colno=0, end_colno=0)


def test_agent_and_library_frames_are_not_check_code(tmp_path: Path) -> None:
    assert frames.in_check_code(str(tmp_path / "checks" / "signup.py"))
    assert not frames.in_check_code(frames.__file__)
    assert not frames.in_check_code(traceback.__file__)
    assert not frames.in_check_code("<string>")


def test_a_statement_is_shown_whole_and_dedented(tmp_path: Path) -> None:
    source = tmp_path / "check.py"
    source.write_text("def check():\n    assert x == [\n        1,\n    ], 'why'\n")
    shown = frames.format_frames([_frame(source, 2, 4)])
    assert shown.splitlines() == [
        f'  File "{source}", line 2, in check',
        "    assert x == [",
        "        1,",
        "    ], 'why'",
    ]


def test_a_very_long_statement_is_cut(tmp_path: Path) -> None:
    source = tmp_path / "check.py"
    source.write_text("x = [\n" + "    1,\n" * 40 + "]\n")
    lines = frames.statement_lines(_frame(source, 1, 42))
    assert len(lines) == frames.STATEMENT_MAX_LINES
    assert lines[0] == "x = ["
    assert lines[-1] == "..."


def test_without_source_the_frames_own_line_is_kept(tmp_path: Path) -> None:
    frame = traceback.FrameSummary(
        str(tmp_path / "gone.py"), 3, "check", line="assert ok", end_lineno=5
    )
    assert frames.statement_lines(frame) == ["assert ok"]
