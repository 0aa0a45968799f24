"""The durable cleanup ledger: test resources recorded in SQLite before they are used.

Each entry is ``open`` while the suite run that created it is in progress, and deleted once its
janitor has removed the resource. When a janitor fails, or the process dies (kill -9) with
entries open, the entry becomes ``pending`` and is retried by the sweep, with back-off and a
failure count. Writes are small and run in WAL mode with ``synchronous=NORMAL``: durable
across a process crash, and fast enough to stay on the event loop.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    suite TEXT NOT NULL,
    kind TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    data TEXT NOT NULL,
    owner TEXT NOT NULL,
    run_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'pending')),
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    next_attempt_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS resources_run ON resources (run_id, state);
CREATE INDEX IF NOT EXISTS resources_state ON resources (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS resources_suite ON resources (suite, state);
"""

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Entry:
    """A tracked test resource."""

    id: int
    suite: str
    kind: str
    resource_id: str
    data: dict[str, Any]
    run_id: str
    state: str
    created_at: float
    attempts: int
    last_error: str


class Ledger:
    """The SQLite ledger in the state directory, owned by one agent process (``owner``)."""

    def __init__(self, path: Path, owner: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.owner = owner
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def add(
        self, suite: str, kind: str, resource_id: str, data: dict[str, Any], run_id: str
    ) -> int:
        """Record an open resource and return its entry id."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO resources (suite, kind, resource_id, data, owner, run_id, state,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
                (suite, kind, resource_id, json.dumps(data), self.owner, run_id, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def for_run(self, run_id: str) -> list[Entry]:
        """Return the open entries of one suite run, newest first (LIFO cleanup)."""
        return self._select("WHERE run_id = ? AND state = 'open' ORDER BY id DESC", (run_id,))

    def due(self, now: float | None = None) -> list[Entry]:
        """Return the pending entries whose next attempt is due, oldest first."""
        when = time.time() if now is None else now
        return self._select("WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id", (when,))

    def remove(self, entry_id: int) -> None:
        """Forget an entry whose resource was deleted."""
        with self._lock:
            self._db.execute("DELETE FROM resources WHERE id = ?", (entry_id,))

    def mark_failed(self, entry_id: int, error: str, now: float | None = None) -> None:
        """Make an entry pending after a failed clean-up, with exponential back-off."""
        when = time.time() if now is None else now
        with self._lock:
            row = self._db.execute(
                "SELECT attempts FROM resources WHERE id = ?", (entry_id,)
            ).fetchone()
            attempts = (row[0] if row else 0) + 1
            delay = min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS)
            self._db.execute(
                "UPDATE resources SET state = 'pending', attempts = ?, last_error = ?,"
                " next_attempt_at = ? WHERE id = ?",
                (attempts, error[:500], when + delay, entry_id),
            )

    def adopt_orphans(self) -> int:
        """Make entries left open by an earlier process pending, due now; return how many."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE resources SET state = 'pending', next_attempt_at = 0"
                " WHERE state = 'open' AND owner != ?",
                (self.owner,),
            )
            return cursor.rowcount

    def pending_by_suite(self) -> dict[str, int]:
        """Return how many entries wait for a retried clean-up, per suite."""
        with self._lock:
            rows = self._db.execute(
                "SELECT suite, COUNT(*) FROM resources WHERE state = 'pending' GROUP BY suite"
            ).fetchall()
        return {suite: count for suite, count in rows}

    def pending_count(self, suite: str) -> int:
        """Return how many entries of one suite wait for a retried clean-up."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM resources WHERE state = 'pending' AND suite = ?", (suite,)
            ).fetchone()
        return int(row[0])

    def _select(self, clause: str, params: tuple[Any, ...]) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, suite, kind, resource_id, data, run_id, state, created_at, attempts,"
                f" last_error FROM resources {clause}",
                params,
            ).fetchall()
        return [
            Entry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7], r[8], r[9])
            for r in rows
        ]
