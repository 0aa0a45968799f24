"""The durable run history: every suite run in SQLite (``<state_dir>/history.sqlite3``).

Each run is kept whole, as compressed JSON (tests, messages, tracebacks, logs, steps, requests),
beside indexed columns for filters; each test of a run is a small row for bars, uptimes and
sparklines. The listener methods run on the event loop and only enqueue: one writer thread
stores the runs, and applies retention (age, then file size) every ``MAINTAIN_EVERY_WRITES``
writes or ``MAINTAIN_EVERY_SECONDS``. Reads use their own connection and block: call them from a
worker thread.

A run's artifacts (:mod:`synthetic_exporter.exporter.artifacts`, ``<state_dir>/artifacts/<run
id>/``) go with it, and their bytes count against the size limit with the database's. A
directory whose run is not stored (its run was dropped, or is still being written) is not
counted, and is deleted once it is ``ORPHAN_GRACE_SECONDS`` old.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from loguru import logger

from synthetic_exporter.core.results import (
    ARTIFACTS_DIR,
    Outcome,
    SuiteResult,
    TestResult,
    to_jsonable,
)
from synthetic_exporter.exporter import artifacts
from synthetic_exporter.exporter.history import summary

HISTORY_FILE = "history.sqlite3"
QUEUE_SIZE = 1000
BATCH_SIZE = 100
MAINTAIN_EVERY_WRITES = 100
MAINTAIN_EVERY_SECONDS = 60.0
MESSAGE_CHARS = 500  # of a test's message in its row (the whole message is in the run)
WAL_LIMIT_BYTES = 4 * 1024 * 1024
MAX_LIMIT = 500
ORPHAN_GRACE_SECONDS = 3600.0  # artifacts are written before their run reaches the store

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    suite TEXT NOT NULL,
    outcome TEXT NOT NULL,
    started_at REAL NOT NULL,
    summary BLOB NOT NULL,
    result BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_run_id ON runs (run_id);
CREATE INDEX IF NOT EXISTS runs_suite ON runs (suite, id);
CREATE INDEX IF NOT EXISTS runs_outcome ON runs (outcome, id);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS test_names (
    id INTEGER PRIMARY KEY,
    suite TEXT NOT NULL,
    test TEXT NOT NULL,
    latest_at REAL NOT NULL DEFAULT 0,
    bad_since REAL,
    UNIQUE (suite, test)
);
CREATE TABLE IF NOT EXISTS tests (
    test_id INTEGER NOT NULL,
    started_at REAL NOT NULL,
    run INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (test_id, started_at, run)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tests_run ON tests (run);
CREATE TABLE IF NOT EXISTS test_hours (
    test_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    counted INTEGER NOT NULL,
    PRIMARY KEY (test_id, hour)
) WITHOUT ROWID;
"""
# A test's runs are stored in its own key range (test_id, started_at): its latest runs are one
# range read. Uptimes add up hourly counts (test_hours), plus the test rows of a partial hour.
SCHEMA_VERSION = 2
HOUR = 3600
OK_OUTCOMES = "('passed', 'flaky')"


@dataclass(frozen=True, slots=True)
class TestRun:
    """One test in one suite run, for bars, uptimes and sparklines."""

    __test__ = False  # not a pytest test class

    run_id: str
    suite: str
    test: str
    outcome: str
    started_at: float
    duration_seconds: float
    message: str


class DamagedHistory(Exception):
    """The history file is not a usable SQLite database of ours."""


def _pack(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 6)


def _unpack(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA busy_timeout=5000")
    return db


def _create(path: Path) -> sqlite3.Connection:
    """Open (creating if new) the history database; raise DamagedHistory if it is not one."""
    try:
        db = _connect(path)
    except sqlite3.DatabaseError as exc:
        raise DamagedHistory(str(exc)) from exc
    try:
        if db.execute("PRAGMA page_count").fetchone()[0] == 0:
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes before the first table
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
        if tables[0] and version != SCHEMA_VERSION:
            raise DamagedHistory(f"schema version {version}, expected {SCHEMA_VERSION}")
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        check = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise DamagedHistory(str(check))
    except sqlite3.DatabaseError as exc:
        db.close()
        raise DamagedHistory(str(exc)) from exc
    except DamagedHistory:
        db.close()
        raise
    return db


def _empty_database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    db.executescript(SCHEMA)
    return db


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise ValueError("cursor must be a value returned as 'next'")
    return int(cursor)


def empty_store() -> RunStore:
    """Return a store that is never started: reads find nothing (an app without history)."""
    return RunStore(Path(HISTORY_FILE), retention_seconds=1.0, max_bytes=1)


class RunStore:
    """Suite runs kept in SQLite for ``retention_seconds`` and at most about ``max_bytes``."""

    def __init__(self, path: Path, retention_seconds: float, max_bytes: int) -> None:
        self.path = path
        self.retention_seconds = retention_seconds
        self.max_bytes = max_bytes
        self.artifacts_dir = path.parent / ARTIFACTS_DIR
        """Where runs' artifacts are kept (``<state_dir>/artifacts``)."""
        self._artifact_bytes: dict[str, int] = {}  # of stored runs' directories (complete)
        self.dropped = 0
        """Runs not stored because the writer's queue was full."""
        self._dropping = False
        self._queue: queue.Queue[SuiteResult | None] = queue.Queue(QUEUE_SIZE)
        self._enqueued = 0
        self._stored = 0  # written, or given up on (an error is logged)
        self._progress = threading.Condition()
        self._write_lock = threading.Lock()  # held while the writer writes
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = _empty_database()  # until started
        self._thread: threading.Thread | None = None
        self._writes_since_maintenance = 0
        self._maintained_at = 0.0
        # Rows are only added between deletions: recent_test_runs keeps what it read and then
        # reads only the rows of runs after ``_cached_through``, until ``_deletions`` changes.
        self._deletions = 0
        self._cache: dict[int, list[TestRun]] = {}
        self._cache_limit = 0
        self._cached_through = 0
        self._cached_at_deletions = -1

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the database (moving a damaged file aside) and start the writer thread.

        Before this, reads find nothing.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
        self._open()
        self._maintain()
        self._thread = threading.Thread(target=self._write_loop, name="run-store", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Store what is queued, stop the writer thread and close the database."""
        if self._thread is not None:
            self._queue.put(None)  # blocks only while the queue is full: the writer drains it
            self._thread.join()
            self._thread = None
        with self._write_lock, self._read_lock:
            for db in (self._writer, self._reader):
                if db is not None:
                    db.close()
            self._writer = self._reader = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[RunStore]:
        """Start the store in a worker thread, and close it (shielded from cancellation)."""
        await anyio.to_thread.run_sync(self.start)
        try:
            yield self
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.close)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the runs queued so far are stored (or ``timeout`` seconds pass)."""
        with self._progress:
            target = self._enqueued
            self._progress.wait_for(lambda: self._stored >= target, timeout)

    def _open(self) -> None:
        try:
            self._writer = _create(self.path)
        except DamagedHistory as exc:
            self._move_aside(str(exc))
            self._writer = _create(self.path)
        self._reader = _connect(self.path)

    def _move_aside(self, why: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        logger.error(f"run history {self.path} is damaged ({why}): moved to {aside}, starting anew")
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            side.unlink(missing_ok=True)
        self.path.replace(aside)

    def _recover(self, why: str) -> None:
        """Replace a database found damaged while in use (writer thread, write lock held)."""
        with self._read_lock:
            for db in (self._writer, self._reader):
                if db is not None:
                    db.close()
            self._move_aside(why)
            self._writer = _create(self.path)
            self._reader = _connect(self.path)
            self._deletions += 1

    # --- listener (event loop: enqueue only) ------------------------------------------------

    def test_finished(self, result: TestResult) -> None:
        """Ignore single tests: suite results carry them."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Queue a suite run for the writer; drop it (counted) if the queue is full.

        A WARNING is logged when dropping starts, not for every run dropped.
        """
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                logger.warning(
                    f"run history: the writer is behind ({self._queue.maxsize} runs queued):"
                    f" run {result.run_id} of {result.suite} and the next ones until it catches"
                    f" up are not stored ({self.dropped} dropped since start)"
                )
            return
        self._dropping = False
        with self._progress:
            self._enqueued += 1

    # --- writer thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=MAINTAIN_EVERY_SECONDS)
            except queue.Empty:
                self._maintain_guarded()
                continue
            batch: list[SuiteResult] = []
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if stopping or len(batch) >= BATCH_SIZE:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write_guarded(batch)
            due = time.monotonic() - self._maintained_at >= MAINTAIN_EVERY_SECONDS
            if self._writes_since_maintenance >= MAINTAIN_EVERY_WRITES or due:
                self._maintain_guarded()

    def _write_guarded(self, batch: list[SuiteResult]) -> None:
        try:
            with self._write_lock:
                try:
                    self._write(batch)
                except sqlite3.DatabaseError as exc:
                    if isinstance(exc, sqlite3.OperationalError):
                        raise
                    self._recover(str(exc))
                    self._write(batch)
        except Exception:
            logger.exception(f"run history: {len(batch)} runs not stored in {self.path}")
        finally:
            self._writes_since_maintenance += len(batch)
            with self._progress:
                self._stored += len(batch)
                self._progress.notify_all()

    def _write(self, batch: list[SuiteResult]) -> None:
        assert self._writer is not None
        db = self._writer
        rows = [
            (r, _pack(summary(r)), _pack(to_jsonable(r)))  # serialised before the transaction
            for r in batch
        ]
        db.execute("BEGIN IMMEDIATE")
        try:
            for result, packed_summary, packed_result in rows:
                cursor = db.execute(
                    "INSERT INTO runs (run_id, suite, outcome, started_at, summary, result)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        result.run_id,
                        result.suite,
                        result.outcome.value,
                        result.started_at,
                        packed_summary,
                        packed_result,
                    ),
                )
                run = cursor.lastrowid
                for test in result.tests:
                    self._write_test(db, run, result.run_id, test)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _write_test(
        self, db: sqlite3.Connection, run: int | None, run_id: str, test: TestResult
    ) -> None:
        db.execute(
            "INSERT INTO test_names (suite, test) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (test.suite, test.name),
        )
        (test_id,) = db.execute(
            "SELECT id FROM test_names WHERE suite = ? AND test = ?", (test.suite, test.name)
        ).fetchone()
        db.execute(
            "INSERT OR REPLACE INTO tests"
            " (test_id, started_at, run, run_id, outcome, duration_seconds, message)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                test_id,
                test.started_at,
                run,
                run_id,
                test.outcome.value,
                test.duration_seconds,
                test.message[:MESSAGE_CHARS],
            ),
        )
        if test.outcome is Outcome.SKIPPED:
            return
        db.execute(
            "INSERT INTO test_hours (test_id, hour, ok, counted) VALUES (?, ?, ?, 1)"
            " ON CONFLICT DO UPDATE SET ok = ok + excluded.ok, counted = counted + 1",
            (test_id, int(test.started_at // HOUR), int(test.outcome.ok)),
        )
        # The current bad streak: it starts at the first bad run after an ok one.
        bad = test.outcome.bad
        db.execute(
            "UPDATE test_names SET latest_at = ?,"
            " bad_since = CASE WHEN ? THEN coalesce(bad_since, ?) ELSE NULL END"
            " WHERE id = ? AND latest_at <= ?",
            (test.started_at, bad, test.started_at, test_id, test.started_at),
        )

    def _maintain_guarded(self) -> None:
        try:
            with self._write_lock:
                self._maintain()
        except Exception:
            logger.exception(f"run history: retention failed on {self.path}")

    def _maintain(self) -> None:
        """Delete runs older than the retention, then the oldest until the file fits."""
        self._writes_since_maintenance = 0
        self._maintained_at = time.monotonic()
        db = self._writer
        assert db is not None
        changes = db.total_changes
        cutoff = time.time() - self.retention_seconds
        row = db.execute("SELECT max(id) FROM runs WHERE started_at < ?", (cutoff,)).fetchone()
        if row[0] is not None:
            self._delete_through(db, row[0])
        kept = self._artifacts_kept(db)
        while self.used_bytes(db) + sum(kept.values()) > self.max_bytes:
            count, first, last = db.execute(
                "SELECT count(*), min(id), max(id) FROM runs"
            ).fetchone()
            if not count:
                break
            # The oldest twentieth (at least one run), by id: ids follow the order of arrival.
            step = max(1, count // 20)
            for run_id in self._delete_through(db, min(last, first + step - 1)):
                kept.pop(run_id, None)
        # Hourly counts go with the runs: those of hours before the oldest kept run.
        oldest = db.execute("SELECT min(started_at) FROM runs").fetchone()[0]
        first_hour = int((time.time() if oldest is None else oldest) // HOUR)
        db.execute("DELETE FROM test_hours WHERE hour < ?", (first_hour,))
        db.execute(
            "DELETE FROM test_names"
            " WHERE NOT EXISTS (SELECT 1 FROM tests WHERE test_id = test_names.id)"
        )
        if db.total_changes != changes:
            self._deletions += 1
        db.executescript("PRAGMA incremental_vacuum")  # execute() would free one page only

    def _delete_through(self, db: sqlite3.Connection, last_id: int) -> set[str]:
        """Delete the runs up to ``last_id`` and their artifacts; return the run ids gone."""
        db.execute("BEGIN IMMEDIATE")
        run_ids = {r[0] for r in db.execute("SELECT run_id FROM runs WHERE id <= ?", (last_id,))}
        db.execute("DELETE FROM tests WHERE run <= ?", (last_id,))
        db.execute("DELETE FROM runs WHERE id <= ?", (last_id,))
        db.execute("COMMIT")
        # A run id some kept run still has (another suite of the same batch) keeps its files.
        gone = {r for r in run_ids if not db.execute(self._HAS_RUN, (r,)).fetchone()}
        artifacts.remove(self.artifacts_dir, gone)
        for run_id in gone:
            self._artifact_bytes.pop(run_id, None)
        return gone

    _HAS_RUN = "SELECT 1 FROM runs WHERE run_id = ? LIMIT 1"

    def _artifacts_kept(self, db: sqlite3.Connection) -> dict[str, int]:
        """Return the bytes of each stored run's artifacts; delete those of runs not stored.

        A directory of a run not stored is left alone (and not counted: deleting stored runs
        would not make it smaller) while younger than the grace period.
        """
        sizes: dict[str, int] = {}
        orphans: list[str] = []
        now = time.time()
        for run_id, modified in artifacts.run_dirs(self.artifacts_dir).items():
            if db.execute(self._HAS_RUN, (run_id,)).fetchone() is None:
                if now - modified > ORPHAN_GRACE_SECONDS:
                    orphans.append(run_id)
                continue
            size = self._artifact_bytes.get(run_id)
            if size is None:  # complete: its files were written before its run was stored
                size = self._artifact_bytes[run_id] = artifacts.dir_bytes(
                    self.artifacts_dir / run_id
                )
            sizes[run_id] = size
        artifacts.remove(self.artifacts_dir, orphans)
        self._artifact_bytes = {r: b for r, b in self._artifact_bytes.items() if r in sizes}
        return sizes

    @staticmethod
    def used_bytes(db: sqlite3.Connection) -> int:
        """Return the bytes of the database's pages in use (the file, once vacuumed)."""
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    # --- reads (blocking: call from a worker thread) -----------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            if self._reader is None:
                raise RuntimeError("the run store is closed")
            yield self._reader

    def runs(
        self,
        *,
        suite: str | None = None,
        test: str | None = None,
        outcome: str | None = None,
        since: float | None = None,
        until: float | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return run summaries, newest first, and the cursor of the next page (or ``None``).

        ``outcome`` is the run's, or with ``test`` that test's outcome in the run; ``since`` and
        ``until`` bound the run's start (unix seconds). A bad ``outcome``, ``cursor`` or
        ``limit`` raises ValueError.
        """
        if outcome is not None and outcome not in {o.value for o in Outcome}:
            raise ValueError(f"outcome must be one of {', '.join(o.value for o in Outcome)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be from 1 to {MAX_LIMIT}")
        before = _parse_cursor(cursor)
        where: list[str] = []
        params: list[Any] = []
        if before is not None:
            where.append("r.id < ?")
            params.append(before)
        if suite is not None:
            where.append("r.suite = ?")
            params.append(suite)
        if since is not None:
            where.append("r.started_at >= ?")
            params.append(since)
        if until is not None:
            where.append("r.started_at <= ?")
            params.append(until)
        if test is not None:
            names = "SELECT id FROM test_names WHERE test = ?" + (
                " AND suite = ?" if suite is not None else ""
            )
            params_names = [test] + ([suite] if suite is not None else [])
            test_outcome = " AND t.outcome = ?" if outcome is not None else ""
            where.append(
                f"r.id IN (SELECT t.run FROM tests t WHERE t.test_id IN ({names}){test_outcome})"
            )
            params += params_names + ([outcome] if outcome is not None else [])
        elif outcome is not None:
            where.append("r.outcome = ?")
            params.append(outcome)
        sql = "SELECT r.id, r.summary FROM runs r"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.id DESC LIMIT ?"
        with self._reading() as db:
            rows = db.execute(sql, (*params, limit + 1)).fetchall()
        page = [_unpack(blob) for _, blob in rows[:limit]]
        return page, (str(rows[limit - 1][0]) if len(rows) > limit else None)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """Return the full result of run ``run_id`` (JSON-ready), or ``None`` if not kept."""
        with self._reading() as db:
            row = db.execute(
                "SELECT result FROM runs WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)
            ).fetchone()
        return None if row is None else dict(_unpack(row[0]))

    _TEST_RUNS = (
        "SELECT run_id, outcome, started_at, duration_seconds, message FROM tests"
        " WHERE test_id = ? ORDER BY started_at DESC LIMIT ?"
    )

    def test_runs(self, suite: str, test: str, limit: int) -> list[TestRun]:
        """Return the last ``limit`` runs of one test, newest first."""
        with self._reading() as db:
            row = db.execute(
                "SELECT id FROM test_names WHERE suite = ? AND test = ?", (suite, test)
            ).fetchone()
            if row is None:
                return []
            rows = db.execute(self._TEST_RUNS, (row[0], limit)).fetchall()
        return [TestRun(r[0], suite, test, *r[1:]) for r in rows]

    def recent_test_runs(self, limit: int) -> dict[tuple[str, str], list[TestRun]]:
        """Return every kept test's last ``limit`` runs, newest first.

        The status page asks for this every few seconds: what was read is kept, and only the
        runs written since are read again (all of it after runs were deleted).
        """
        with self._reading() as db:
            if limit > self._cache_limit or self._cached_at_deletions != self._deletions:
                names = self._reread(db, limit)
            else:
                names = self._read_new(db)
            return {
                names[test_id]: runs[:limit]
                for test_id, runs in self._cache.items()
                if runs and test_id in names
            }

    @staticmethod
    def _names(db: sqlite3.Connection) -> dict[int, tuple[str, str]]:
        return {i: (s, t) for i, s, t in db.execute("SELECT id, suite, test FROM test_names")}

    def _reread(self, db: sqlite3.Connection, limit: int) -> dict[int, tuple[str, str]]:
        self._cached_at_deletions = self._deletions  # before reading: a deletion now rereads
        (through,) = db.execute("SELECT coalesce(max(run), 0) FROM tests").fetchone()
        names = self._names(db)  # after: every test of a run up to ``through`` is named
        self._cache = {}
        for test_id, (suite, test) in names.items():
            rows = db.execute(
                "SELECT run_id, outcome, started_at, duration_seconds, message FROM tests"
                " WHERE test_id = ? AND run <= ? ORDER BY started_at DESC LIMIT ?",
                (test_id, through, limit),
            ).fetchall()
            self._cache[test_id] = [TestRun(r[0], suite, test, *r[1:]) for r in rows]
        self._cache_limit = limit
        self._cached_through = through
        return names

    def _read_new(self, db: sqlite3.Connection) -> dict[int, tuple[str, str]]:
        rows = db.execute(
            "SELECT test_id, run, run_id, outcome, started_at, duration_seconds, message"
            " FROM tests WHERE run > ? ORDER BY run",
            (self._cached_through,),
        ).fetchall()
        names = self._names(db)  # after the rows: names every test they have
        touched = set()
        for test_id, run, run_id, *fields in rows:
            if test_id not in names:  # deleted meanwhile: the next call reads everything again
                continue
            suite, test = names[test_id]
            self._cache.setdefault(test_id, []).append(TestRun(run_id, suite, test, *fields))
            touched.add(test_id)
            self._cached_through = max(self._cached_through, run)
        for test_id in touched:
            runs = sorted(self._cache[test_id], key=lambda r: r.started_at, reverse=True)
            self._cache[test_id] = runs[: self._cache_limit]
        return names

    def uptimes(self, since: float) -> dict[tuple[str, str], float]:
        """Return each test's share of ok runs (passed, flaky) since ``since``.

        Skipped runs are not counted; tests with no other run since then are left out.
        """
        first_full_hour = -int(-since // HOUR)  # whole hours from here on come from test_hours
        with self._reading() as db:
            names = {i: (s, t) for i, s, t in db.execute("SELECT id, suite, test FROM test_names")}
            counts = {
                test_id: [ok, counted]
                for test_id, ok, counted in db.execute(
                    "SELECT test_id, sum(ok), sum(counted) FROM test_hours WHERE hour >= ?"
                    " GROUP BY test_id",
                    (first_full_hour,),
                )
            }
            if since < first_full_hour * HOUR:
                for test_id in names:
                    ok, counted = db.execute(
                        f"SELECT sum(outcome IN {OK_OUTCOMES}), count(*) FROM tests"
                        " WHERE test_id = ? AND started_at >= ? AND started_at < ?"
                        " AND outcome != 'skipped'",
                        (test_id, since, first_full_hour * HOUR),
                    ).fetchone()
                    if counted:
                        total = counts.setdefault(test_id, [0, 0])
                        total[0] += ok
                        total[1] += counted
        return {
            names[test_id]: ok / counted
            for test_id, (ok, counted) in counts.items()
            if counted and test_id in names
        }

    def failing_since(self) -> dict[tuple[str, str], float]:
        """Return the tests whose latest run (not skipped) is bad: when their bad streak began.

        The time is the start of the streak's first bad run; a skipped run neither ends nor
        starts a streak.
        """
        with self._reading() as db:
            rows = db.execute(
                "SELECT suite, test, bad_since FROM test_names WHERE bad_since IS NOT NULL"
            ).fetchall()
        return {(suite, test): since for suite, test, since in rows}
