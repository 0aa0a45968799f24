"""Files kept for a test run (a failed browser test's screenshot and trace), on disk.

They live in ``<state dir>/artifacts/<run id>/<test dir>/<name>``, where the test's directory
is its name with ``/`` replaced by ``__`` (subtests). The run store deletes a run's directory
with the run and counts the directories' bytes against its size limit; the API serves a file
only if its run's record lists it (:func:`find`). Nothing here raises on a damaged or vanished
file: sizes skip what they cannot read and deletions log what they cannot remove.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loguru import logger

from synthetic_exporter.core.results import dir_of_test

CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".zip": "application/zip",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
}
"""Content types by file suffix; any other file is served as ``application/octet-stream``."""
INLINE = frozenset({".png", ".jpg", ".jpeg", ".webp", ".txt", ".log", ".json"})
"""Suffixes a browser may show; any other file is a download (a trace)."""


def content_type(name: str) -> str:
    """Return the content type an artifact is served with."""
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def is_inline(name: str) -> bool:
    """Tell whether an artifact is shown in the browser (an image) rather than downloaded."""
    return Path(name).suffix.lower() in INLINE


def _plain(part: str) -> bool:
    """Tell whether a path part is one plain name: not empty, no separator, not ``.``/``..``."""
    return bool(part) and part not in (".", "..") and not any(c in part for c in "/\\\x00")


def find(root: Path, run: Mapping[str, Any], test_dir: str, name: str) -> Path | None:
    """Return the file of artifact ``name`` of ``run``'s test ``test_dir``, or None.

    ``run`` is the run's JSON record: only a file its test lists is found, and only inside
    ``root``'s run directory (a symlink out of it is refused); None when it is gone.
    """
    if not all(_plain(part) for part in (str(run.get("run_id", "")), test_dir, name)):
        return None
    listed = any(
        dir_of_test(str(test.get("name", ""))) == test_dir and name in test.get("artifacts", ())
        for test in run.get("tests", ())
    )
    if not listed:
        return None
    base = root / str(run["run_id"])
    path = base / test_dir / name
    try:
        real, real_base = path.resolve(strict=True), base.resolve(strict=True)
    except OSError:
        return None
    if not real.is_relative_to(real_base) or not real.is_file():
        return None
    return real


def dir_bytes(path: Path) -> int:
    """Return the bytes of the files under ``path`` (what cannot be read counts 0)."""
    total = 0
    for parent, _, files in os.walk(path, onerror=lambda _: None):
        for file in files:
            try:
                total += os.lstat(os.path.join(parent, file)).st_size
            except OSError:
                continue
    return total


def run_dirs(root: Path) -> dict[str, float]:
    """Return each run directory under ``root`` with its modification time (none: ``{}``)."""
    found: dict[str, float] = {}
    try:
        entries = list(os.scandir(root))
    except OSError:
        return found
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                found[entry.name] = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
    return found


def remove(root: Path, run_ids: Iterable[str]) -> None:
    """Delete the artifact directories of ``run_ids`` (a failure is logged, not raised)."""
    for run_id in run_ids:
        if not _plain(run_id):
            continue
        path = root / run_id
        try:
            if path.is_symlink():
                path.unlink()
            elif path.exists():
                shutil.rmtree(path)
        except OSError as exc:
            logger.warning(f"run history: could not delete the artifacts {path}: {exc}")


def remove_older_than(root: Path, seconds: float, now: float) -> list[str]:
    """Delete the run directories under ``root`` last modified over ``seconds`` before ``now``.

    What ``run --once`` keeps has no run in the history to go with: this is its retention.
    Returns the run ids deleted.
    """
    old = [run_id for run_id, modified in run_dirs(root).items() if now - modified > seconds]
    remove(root, old)
    return old
