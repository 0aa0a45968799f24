"""Artifact files: which ones a run's record lets out, sizes and deletion, on real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from synthetic_exporter.core.results import dir_of_test
from synthetic_exporter.exporter import artifacts


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "state" / "artifacts" / "r1" / "parent__sub"
    folder.mkdir(parents=True)
    (folder / "screenshot.png").write_bytes(b"\x89PNG....")
    (tmp_path / "state" / "history.sqlite3").write_bytes(b"SQLite format 3\x00")
    return tmp_path / "state" / "artifacts"


def record(test: str, *names: str, run_id: str = "r1") -> dict[str, object]:
    """Return a run's JSON record with one test listing ``names``."""
    return {"run_id": run_id, "tests": [{"name": test, "artifacts": list(names)}]}


def test_a_listed_file_of_a_subtest_is_found(root: Path) -> None:
    found = artifacts.find(
        root, record("parent/sub", "screenshot.png"), "parent__sub", "screenshot.png"
    )
    assert found == (root / "r1" / "parent__sub" / "screenshot.png").resolve()
    assert dir_of_test("parent/sub") == "parent__sub"


@pytest.mark.parametrize(
    ("run", "test_dir", "name"),
    [
        (record("parent/sub", "../../history.sqlite3"), "parent__sub", "../../history.sqlite3"),
        (record("..", "history.sqlite3"), "..", "history.sqlite3"),
        (record("x", "history.sqlite3", run_id=".."), "..", "history.sqlite3"),
        (
            record("parent/sub", "screenshot.png", run_id="../artifacts/r1"),
            "parent__sub",
            "screenshot.png",
        ),
        (record("parent/sub", "screenshot.png"), "parent__sub", "trace.zip"),
        (record("parent/sub", "trace.zip"), "parent__sub", "trace.zip"),  # listed, not on disk
        ({"run_id": "r1"}, "parent__sub", "screenshot.png"),  # stored before artifacts existed
    ],
)
def test_nothing_else_is_found_even_if_a_record_lists_it(
    root: Path, run: dict[str, object], test_dir: str, name: str
) -> None:
    assert artifacts.find(root, run, test_dir, name) is None


def test_content_types_and_inline_files() -> None:
    assert artifacts.content_type("screenshot.png") == "image/png"
    assert artifacts.content_type("trace.zip") == "application/zip"
    assert artifacts.content_type("page.html") == "application/octet-stream"
    assert artifacts.is_inline("screenshot.PNG")
    assert not artifacts.is_inline("trace.zip")
    assert not artifacts.is_inline("page.html")


def test_sizes_and_deletion_cope_with_what_is_not_there(root: Path) -> None:
    assert artifacts.dir_bytes(root) == len(b"\x89PNG....")
    assert artifacts.dir_bytes(root / "missing") == 0
    assert set(artifacts.run_dirs(root)) == {"r1"}
    assert artifacts.run_dirs(root / "missing") == {}
    artifacts.remove(root, ["missing", "..", "r1"])
    assert not (root / "r1").exists()
    assert (root.parent / "history.sqlite3").exists()


def test_run_directories_past_the_retention_are_removed(root: Path) -> None:
    young = root / "r2" / "test"
    young.mkdir(parents=True)
    now = time.time()
    os.utime(root / "r1", (now - 3600, now - 3600))
    assert artifacts.remove_older_than(root, 1800, now) == ["r1"]
    assert sorted(artifacts.run_dirs(root)) == ["r2"]
    assert artifacts.remove_older_than(root / "missing", 0, now) == []
