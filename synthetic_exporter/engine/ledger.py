"""The durable cleanup ledger: test resources recorded in SQLite before they are used.

Each entry is ``open`` while the suite run that created it is in progress, and deleted once its
janitor has removed the resource. When a janitor fails, or the process dies (kill -9) with
entries open, the entry becomes ``pending`` and is retried by the sweep, with back-off and a
failure count.

An *intent* is an entry written before a create request: it has a ``key`` (the marker the new
resource will carry) and no ``resource_id`` yet. ``resolve`` fills in the id when the answer
arrives; an intent left unresolved (the process died, the request timed out) is matched by the
orphan sweep, which finds the resource by its key.

Writes are small and run in WAL mode with ``synchronous=NORMAL``: durable across a process
crash, and fast enough to stay on the event loop.
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
    key TEXT NOT NULL DEFAULT '',
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
KEY_INDEX = "CREATE INDEX IF NOT EXISTS resources_key ON resources (key)"
UNRESOLVED = "key != '' AND resource_id = ''"

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
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
    key: str = ""

    @property
    def unresolved(self) -> bool:
        """Return whether this is an intent whose resource id is not known yet."""
        return bool(self.key) and not self.resource_id


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
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(resources)")}
        if "key" not in columns:  # a ledger written before intents existed
            self._db.execute("ALTER TABLE resources ADD COLUMN key TEXT NOT NULL DEFAULT ''")
        self._db.execute(KEY_INDEX)

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

    def intend(self, suite: str, kind: str, key: str, run_id: str) -> int:
        """Record, before a create request, that a resource carrying ``key`` may come to exist."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO resources (suite, kind, resource_id, key, data, owner, run_id, state,"
                " created_at) VALUES (?, ?, '', ?, '{}', ?, ?, 'open', ?)",
                (suite, kind, key, self.owner, run_id, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def resolve(
        self, suite: str, kind: str, key: str, resource_id: str, data: dict[str, Any], run_id: str
    ) -> None:
        """Give an open intent of this run its resource id; LookupError if there is none."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE resources SET resource_id = ?, data = ? WHERE key = ? AND suite = ?"
                f" AND kind = ? AND run_id = ? AND state = 'open' AND {UNRESOLVED}",
                (resource_id, json.dumps(data), key, suite, kind, run_id),
            )
        if cursor.rowcount != 1:
            raise LookupError(
                f"no unresolved {kind!r} intent with key {key!r} in this suite run: pass the key"
                f" that t.intend({kind!r}) returned, once"
            )

    def found(self, entry_id: int, resource_id: str) -> None:
        """Give an intent the id of the resource the orphan sweep found by its key."""
        with self._lock:
            self._db.execute(
                "UPDATE resources SET resource_id = ? WHERE id = ?", (resource_id, entry_id)
            )

    def release(self, entry_id: int) -> None:
        """Hand an unresolved intent of a finished run to the sweep (pending, not failed)."""
        with self._lock:
            self._db.execute("UPDATE resources SET state = 'pending' WHERE id = ?", (entry_id,))

    def unresolved(self) -> list[Entry]:
        """Return the pending intents (their runs ended without an id), oldest first."""
        return self._select(f"WHERE state = 'pending' AND {UNRESOLVED} ORDER BY id", ())

    def holdings(self) -> tuple[set[str], set[str]]:
        """Return every resource id in the ledger, and the keys of open (live) intents."""
        with self._lock:
            ids = {r[0] for r in self._db.execute("SELECT resource_id FROM resources")}
            keys = self._db.execute(
                f"SELECT key FROM resources WHERE state = 'open' AND {UNRESOLVED}"
            ).fetchall()
        ids.discard("")
        return ids, {r[0] for r in keys}

    def by_id(self, entry_id: int) -> list[Entry]:
        """Return the entry with this id (a list of one, or empty if it is gone)."""
        return self._select("WHERE id = ?", (entry_id,))

    def for_run(self, run_id: str) -> list[Entry]:
        """Return the open entries of one suite run, newest first (LIFO cleanup)."""
        return self._select("WHERE run_id = ? AND state = 'open' ORDER BY id DESC", (run_id,))

    def due(self, now: float | None = None) -> list[Entry]:
        """Return the pending entries (intents excluded) whose next attempt is due, oldest first."""
        when = time.time() if now is None else now
        return self._select(
            f"WHERE state = 'pending' AND NOT ({UNRESOLVED}) AND next_attempt_at <= ? ORDER BY id",
            (when,),
        )

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
        """Return how many entries (intents excluded) wait for a retried clean-up, per suite."""
        with self._lock:
            rows = self._db.execute(
                "SELECT suite, COUNT(*) FROM resources"
                f" WHERE state = 'pending' AND NOT ({UNRESOLVED}) GROUP BY suite"
            ).fetchall()
        return {suite: count for suite, count in rows}

    def pending_count(self, suite: str) -> int:
        """Return how many entries (intents excluded) of one suite wait for a retried clean-up."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM resources"
                f" WHERE state = 'pending' AND NOT ({UNRESOLVED}) AND suite = ?",
                (suite,),
            ).fetchone()
        return int(row[0])

    def _select(self, clause: str, params: tuple[Any, ...]) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, suite, kind, resource_id, data, run_id, state, created_at, attempts,"
                f" last_error, key FROM resources {clause}",
                params,
            ).fetchall()
        return [
            Entry(
                id=r[0],
                suite=r[1],
                kind=r[2],
                resource_id=r[3],
                data=json.loads(r[4]),
                run_id=r[5],
                state=r[6],
                created_at=r[7],
                attempts=r[8],
                last_error=r[9],
                key=r[10],
            )
            for r in rows
        ]
