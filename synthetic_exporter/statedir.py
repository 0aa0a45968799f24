"""One agent process per state directory: its ledger's open entries are that process's own.

A second process on the same directory would take the first one's in-flight test data for
leftovers of a crash and delete it, so the directory is locked (``flock``) while in use.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "agent.lock"


class StateDirInUse(RuntimeError):
    """Another agent process holds the state directory."""


@contextmanager
def hold_state_dir(path: Path) -> Iterator[None]:
    """Lock ``path`` for this process until the block ends."""
    path.mkdir(parents=True, exist_ok=True)
    lock = path / LOCK_FILE
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StateDirInUse(
                f"{path} is in use by another agent process (pid {holder}); give each agent"
                " its own state directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
