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


class StateDirError(RuntimeError):
    """The state directory cannot be used; str() is one line naming the path."""


class StateDirInUse(StateDirError):
    """Another agent process holds the state directory."""


def _prepare(path: Path) -> None:
    """Create ``path`` if needed and check that this process can write in it."""
    if path.exists() and not path.is_dir():
        raise StateDirError(f"{path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateDirError(f"cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(f"{path} is not writable by this process (uid {os.geteuid()})")


@contextmanager
def hold_state_dir(path: Path) -> Iterator[None]:
    """Lock ``path`` for this process until the block ends."""
    _prepare(path)
    lock = path / LOCK_FILE
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateDirError(f"cannot write {lock}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StateDirInUse(
                f"{path} is in use by another agent process (pid {holder}); give each agent"
                " its own state directory"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as exc:
            raise StateDirError(f"cannot write {lock}: {exc.strerror}") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock
