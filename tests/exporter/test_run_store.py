"""The durable run history: real SQLite files in tmp_path, a real writer thread."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from synthetic_exporter.core.results import (
    AssetCount,
    LogLine,
    Outcome,
    PageRecord,
    RequestRecord,
    SuiteResult,
    dir_of_test,
    suite_outcome,
)
from synthetic_exporter.exporter import artifacts as artifacts_module
from synthetic_exporter.exporter import run_store as run_store_module
from synthetic_exporter.exporter.run_store import RunStore
from tests.factories import make_suite, make_test

DAY = 86400.0
MIB = 1024 * 1024


def run(
    suite: str, *tests: tuple[str, Outcome], at: float, run_id: str, message: str = ""
) -> SuiteResult:
    """Return a suite run ending at ``at`` with its own run id."""
    made = make_suite(suite, *tests, at=at, message=message)
    return dataclasses.replace(made, run_id=run_id)


def rich_run(suite: str, at: float, run_id: str) -> SuiteResult:
    """Return a failed run carrying a traceback, logs and request records."""
    request = RequestRecord(
        target="api",
        method="GET",
        path="/orders",
        status=503,
        duration_seconds=0.2,
        phases={"connect": 0.01, "processing": 0.19},
        started_at=at - 0.5,
        remote_address="2600:9000:2001::1",
        ip_family=6,
    )
    failed = dataclasses.replace(
        make_test(suite, "pay", Outcome.FAILED, at=at, message="assert 503 == 201"),
        traceback="Traceback: line 3",
        logs=(LogLine(0.1, "INFO", "paying"),),
        requests=(request,),
    )
    ok = make_test(suite, "browse", Outcome.PASSED, at=at)
    tests = (ok, failed)
    return SuiteResult(
        suite=suite,
        run_id=run_id,
        outcome=suite_outcome(tests),
        tests=tests,
        started_at=at - 1,
        ended_at=at,
        duration_seconds=1.0,
        scheduled_at=at - 1,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "history.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[RunStore]:
    opened = RunStore(path, retention_seconds=7 * DAY, max_bytes=256 * MIB)
    opened.start()
    yield opened
    opened.close()


@pytest.fixture
def messages() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(f"{m.record['level'].name} {m.record['message']}"))
    yield seen
    logger.remove(sink)


def test_runs_survive_a_restart_whole(path: Path) -> None:
    now = time.time()
    first = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    first.start()
    first.suite_finished(rich_run("orders", now - 10, "aaa111"))
    first.close()

    again = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    again.start()
    try:
        full = again.run("aaa111")
        assert full is not None
        assert full["outcome"] == "failed"
        pay = full["tests"][1]
        assert (pay["name"], pay["traceback"], pay["logs"][0]["message"]) == (
            "pay",
            "Traceback: line 3",
            "paying",
        )
        assert pay["requests"][0]["status"] == 503
        assert (pay["requests"][0]["remote_address"], pay["requests"][0]["ip_family"]) == (
            "2600:9000:2001::1",
            6,
        )
        runs, following = again.runs()
        assert following is None
        assert [(r["run_id"], r["tests"]) for r in runs] == [
            ("aaa111", {"browse": "passed", "pay": "failed"})
        ]
        assert runs[0]["failures"][0]["message"] == "assert 503 == 201"
        assert again.run("nope") is None
        assert again.failing_since() == {("orders", "pay"): now - 10 - 0.1}
    finally:
        again.close()
    assert (path.parent / "history.sqlite3").exists()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_filters_and_pages(store: RunStore) -> None:
    now = time.time()
    for i in range(7):
        outcome = Outcome.FAILED if i % 3 == 0 else Outcome.PASSED
        store.suite_finished(
            run(
                "orders",
                ("pay", outcome),
                ("browse", Outcome.PASSED),
                at=now - 100 + i,
                run_id=f"o{i}",
            )
        )
        store.suite_finished(
            run("signup", ("register", Outcome.PASSED), at=now - 100 + i, run_id=f"s{i}")
        )
    store.flush()

    everything, following = store.runs(limit=500)
    assert following is None
    assert [r["run_id"] for r in everything[:4]] == ["s6", "o6", "s5", "o5"]

    pages: list[str] = []
    cursor = None
    while True:
        page, cursor = store.runs(suite="orders", limit=3, cursor=cursor)
        pages += [r["run_id"] for r in page]
        assert len(page) <= 3
        if cursor is None:
            break
    assert pages == [f"o{i}" for i in range(6, -1, -1)]

    failed, _ = store.runs(outcome="failed")
    assert [r["run_id"] for r in failed] == ["o6", "o3", "o0"]
    by_test, _ = store.runs(test="pay", outcome="failed")
    assert [r["run_id"] for r in by_test] == ["o6", "o3", "o0"]
    browse_failed, _ = store.runs(test="browse", outcome="failed")
    assert browse_failed == []  # the test's outcome, not the run's
    register, _ = store.runs(test="register")
    assert {r["suite"] for r in register} == {"signup"}
    assert store.runs(suite="signup", test="pay")[0] == []
    window, _ = store.runs(since=now - 100 + 2 - 1, until=now - 100 + 4 - 1, suite="signup")
    assert [r["run_id"] for r in window] == ["s4", "s3", "s2"]

    for bad in ({"outcome": "broken"}, {"cursor": "x1"}, {"limit": 0}, {"limit": 501}):
        with pytest.raises(ValueError):
            store.runs(**bad)


def test_test_runs_and_recent_test_runs(store: RunStore) -> None:
    now = time.time()
    for i in range(5):
        store.suite_finished(
            run("orders", ("pay", Outcome.PASSED), at=now - 50 + i, run_id=f"o{i}", message="")
        )
    store.suite_finished(
        run("signup", ("register", Outcome.ERROR), at=now, run_id="s0", message="boom")
    )
    store.flush()
    pay = store.test_runs("orders", "pay", 3)
    assert [t.run_id for t in pay] == ["o4", "o3", "o2"]
    assert (pay[0].suite, pay[0].test, pay[0].outcome) == ("orders", "pay", "passed")
    assert store.test_runs("orders", "nope", 3) == []
    recent = store.recent_test_runs(2)
    assert {k: [t.run_id for t in v] for k, v in recent.items()} == {
        ("orders", "pay"): ["o4", "o3"],
        ("signup", "register"): ["s0"],
    }
    assert recent["signup", "register"][0].message == "boom"


def test_uptimes_ignore_skips_and_count_flaky_as_ok(store: RunStore) -> None:
    now = time.time()
    outcomes = {
        "mixed": [Outcome.PASSED, Outcome.FLAKY, Outcome.FAILED, Outcome.SKIPPED, Outcome.TIMEOUT],
        "all_bad": [Outcome.ERROR, Outcome.FAILED],
        "all_skipped": [Outcome.SKIPPED, Outcome.SKIPPED],
    }
    for i in range(5):
        tests = [(name, seq[i]) for name, seq in outcomes.items() if i < len(seq)]
        store.suite_finished(run("s", *tests, at=now - 100 + i, run_id=f"r{i}"))
    store.suite_finished(run("s", ("mixed", Outcome.FAILED), at=now - 5000, run_id="old"))
    store.flush()
    assert store.uptimes(now - 1000) == {("s", "mixed"): 0.5, ("s", "all_bad"): 0.0}
    assert store.uptimes(now - 10000)["s", "mixed"] == 2 / 5
    assert store.uptimes(now) == {}


def test_failing_since_tracks_the_current_bad_streak(store: RunStore) -> None:
    now = time.time()
    sequence = [
        ("a", Outcome.FAILED),  # streak 1
        ("b", Outcome.PASSED),  # recovery resets
        ("c", Outcome.TIMEOUT),  # streak 2 starts here
        ("d", Outcome.SKIPPED),  # skips neither end nor start a streak
        ("e", Outcome.ERROR),
    ]
    for i, (run_id, outcome) in enumerate(sequence):
        store.suite_finished(
            run(
                "s",
                ("t", outcome),
                ("ok", Outcome.PASSED),
                ("flaky", Outcome.FLAKY),
                at=now + i,
                run_id=run_id,
            )
        )
    store.flush()
    assert store.failing_since() == {("s", "t"): now + 2 - 0.1}
    store.suite_finished(run("s", ("t", Outcome.FLAKY), at=now + 10, run_id="f"))
    store.flush()
    assert store.failing_since() == {}


def test_old_runs_are_deleted(path: Path) -> None:
    now = time.time()
    first = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    first.start()
    first.suite_finished(run("s", ("t", Outcome.FAILED), at=now - 2 * DAY, run_id="old"))
    first.suite_finished(run("s", ("t", Outcome.PASSED), at=now - 60, run_id="new"))
    first.close()
    again = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    again.start()  # retention runs at start, then every 100 writes or 60 s
    try:
        assert [r["run_id"] for r in again.runs()[0]] == ["new"]
        assert again.run("old") is None
        assert [t.run_id for t in again.test_runs("s", "t", 10)] == ["new"]
    finally:
        again.close()


def test_the_file_stays_under_its_size_limit(path: Path) -> None:
    now = time.time()
    store = RunStore(path, retention_seconds=7 * DAY, max_bytes=1 * MIB)
    store.start()
    largest = 0
    try:
        for i in range(3000):  # about 3 MiB of runs without a limit
            store.suite_finished(rich_run(f"suite{i % 20}", now - 3000 + i, f"r{i}"))
            if i % 250 == 0:
                store.flush()
                largest = max(largest, path.stat().st_size)
    finally:
        store.close()
    # Checked every 100 writes: in between the file may grow by up to 100 runs.
    assert largest <= 1.5 * MIB
    again = RunStore(path, retention_seconds=7 * DAY, max_bytes=1 * MIB)
    again.start()  # checked at start too
    try:
        db = sqlite3.connect(path)
        assert RunStore.used_bytes(db) <= 1 * MIB
        db.close()
        runs, _ = again.runs(limit=500)
        assert runs[0]["run_id"] == "r2999"
        assert again.run("r0") is None  # the oldest went first
    finally:
        again.close()
    assert path.stat().st_size <= 1.1 * MIB


def test_a_damaged_file_is_moved_aside(path: Path, messages: list[str]) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 1000)
    store = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    store.start()
    try:
        store.suite_finished(run("s", ("t", Outcome.PASSED), at=time.time(), run_id="fresh"))
        store.flush()
        assert store.run("fresh") is not None
    finally:
        store.close()
    (aside,) = path.parent.glob("history.sqlite3.damaged-*")
    assert aside.read_bytes().startswith(b"this is not a database")
    errors = [m for m in messages if m.startswith("ERROR")]
    assert len(errors) == 1
    assert str(path) in errors[0]
    assert str(aside) in errors[0]


def test_the_listener_never_waits_for_sqlite(
    store: RunStore, messages: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_store_module, "QUEUE_SIZE", 50)
    slow = RunStore(
        store.path.with_name("slow.sqlite3"), retention_seconds=DAY, max_bytes=256 * MIB
    )
    slow.start()
    try:
        now = time.time()
        with slow._write_lock:  # a disk that does not answer: the writer waits on its lock
            slow.suite_finished(rich_run("s", now, "r0"))
            time.sleep(0.3)  # the writer takes r0 off the queue, then waits on the lock
            started = time.perf_counter()
            for i in range(1, 200):
                slow.suite_finished(rich_run("s", now + i, f"r{i}"))
            spent = time.perf_counter() - started
            assert spent < 0.2, spent  # 200 runs queued or dropped, none written here
        slow.flush()
        kept, _ = slow.runs(limit=500)
        # The writer took a batch off the queue before it blocked on the lock; 50 more fit.
        assert 50 <= len(kept) < 200
        assert slow.dropped == 200 - len(kept)
        warnings = [m for m in messages if m.startswith("WARNING")]
        assert len(warnings) == 1  # when dropping starts, not once per run
        assert "the writer is behind (50 runs queued)" in warnings[0]
        slow.suite_finished(rich_run("s", now + 1000, "after"))  # stored: dropping has ended
        slow.flush()
        with slow._write_lock:
            slow.suite_finished(rich_run("s", now + 2000, "again0"))
            time.sleep(0.3)  # as above: the writer holds again0 and waits
            for i in range(1, 200):
                slow.suite_finished(rich_run("s", now + 2000 + i, f"again{i}"))
        slow.flush()
        assert len([m for m in messages if m.startswith("WARNING")]) == 2
        assert slow.run("after") is not None
    finally:
        slow.close()


def test_uptimes_add_whole_hours_and_the_partial_hour_exactly(store: RunStore) -> None:
    start = (time.time() // 3600 - 8) * 3600 + 1234.5  # eight hours ago, mid-hour
    cycle = [Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED, Outcome.FLAKY, Outcome.ERROR]
    outcomes = [cycle[(i * 7) % 5] if i % 11 else Outcome.TIMEOUT for i in range(70)]
    for i, outcome in enumerate(outcomes):  # one run every 7 minutes
        store.suite_finished(run("s", ("t", outcome), at=start + 420 * i, run_id=f"r{i}"))
    store.flush()
    for since in (start - 10, start + 3000, start + 3600 * 2.5, start + 3600 * 7 + 1, start + 4e4):
        counted = [
            o
            for i, o in enumerate(outcomes)
            if start + 420 * i - 0.1 >= since and o.value != "skipped"
        ]
        expected = sum(o.ok for o in counted) / len(counted) if counted else None
        assert store.uptimes(since).get(("s", "t")) == expected, since


def test_a_history_of_another_schema_version_is_moved_aside(path: Path) -> None:
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    store.start()
    store.close()
    assert len(list(path.parent.glob("history.sqlite3.damaged-*"))) == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


def test_recent_test_runs_sees_new_runs_and_deletions(path: Path) -> None:
    now = time.time()
    store = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    store.start()
    try:
        store.suite_finished(run("s", ("t", Outcome.PASSED), at=now - DAY + 30, run_id="aging"))
        for i in range(3):
            store.suite_finished(run("s", ("t", Outcome.PASSED), at=now - 100 + i, run_id=f"r{i}"))
        store.flush()
        assert [t.run_id for t in store.recent_test_runs(3)["s", "t"]] == ["r2", "r1", "r0"]
        store.suite_finished(run("s", ("t", Outcome.FAILED), at=now - 50, run_id="new"))
        store.suite_finished(run("other", ("u", Outcome.PASSED), at=now - 40, run_id="o"))
        store.suite_finished(run("s", ("t", Outcome.PASSED), at=now - 200, run_id="late"))
        store.flush()
        recent = store.recent_test_runs(3)
        assert [t.run_id for t in recent["s", "t"]] == ["new", "r2", "r1"]
        assert [t.run_id for t in recent["other", "u"]] == ["o"]
        assert [t.run_id for t in store.recent_test_runs(10)["s", "t"]] == [
            "new",
            "r2",
            "r1",
            "r0",
            "late",
            "aging",
        ]
        store.retention_seconds = DAY - 60  # "aging" is now too old: the next check deletes it
        store._maintain_guarded()
        assert [t.run_id for t in store.recent_test_runs(10)["s", "t"]][-1] == "late"
    finally:
        store.close()


def browser_run(suite: str, at: float, run_id: str, root: Path, size: int = 1000) -> SuiteResult:
    """Return a failed browser run whose artifacts were written under ``root`` (the runner's)."""
    page = PageRecord(
        target="web",
        path="/dashboard",
        status=200,
        phases={"ttfb": 0.05, "load": 0.4},
        vitals={"fcp": 0.3, "lcp": 1.1, "tbt": 0.0},
        cls=0.01,
        requests=9,
        transfer_bytes=120_000,
        assets=(AssetCount("web", "LHR", "Hit", 8),),
    )
    test = dataclasses.replace(
        make_test(suite, "dash/home", Outcome.FAILED, at=at, message="LCP too slow"),
        pages=(page,),
        artifacts=("screenshot.png", "trace.zip"),
    )
    folder = root / run_id / dir_of_test(test.name)
    folder.mkdir(parents=True)
    (folder / "screenshot.png").write_bytes(b"\x89PNG" + bytes(size))
    (folder / "trace.zip").write_bytes(b"PK" + bytes(size))
    made = run(suite, at=at, run_id=run_id)
    return dataclasses.replace(made, tests=(test,), outcome=Outcome.FAILED)


def test_pages_and_artifacts_round_trip(store: RunStore) -> None:
    now = time.time()
    store.suite_finished(browser_run("web", now, "b1", store.artifacts_dir))
    store.flush()
    full = store.run("b1")
    assert full is not None
    test = full["tests"][0]
    assert test["artifacts"] == ["screenshot.png", "trace.zip"]
    page = test["pages"][0]
    assert (page["path"], page["vitals"]["lcp"], page["cls"], page["requests"]) == (
        "/dashboard",
        1.1,
        0.01,
        9,
    )
    assert page["assets"] == [{"target": "web", "pop": "LHR", "cache": "Hit", "responses": 8}]
    assert store.artifacts_dir == store.path.parent / "artifacts"


def test_runs_stored_before_pages_existed_still_load(store: RunStore) -> None:
    now = time.time()
    store.suite_finished(rich_run("orders", now, "old1"))
    store.flush()
    db = sqlite3.connect(store.path)
    (blob,) = db.execute("SELECT result FROM runs WHERE run_id = 'old1'").fetchone()
    old = run_store_module._unpack(blob)
    for test in old["tests"]:
        del test["pages"], test["artifacts"]
    db.execute("UPDATE runs SET result = ? WHERE run_id = 'old1'", (run_store_module._pack(old),))
    db.commit()
    db.close()
    full = store.run("old1")
    assert full is not None
    assert [t["name"] for t in full["tests"]] == ["browse", "pay"]
    assert "pages" not in full["tests"][0]


def test_artifacts_go_with_their_runs_by_age(path: Path) -> None:
    now = time.time()
    root = path.parent / "artifacts"
    first = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    first.start()
    first.suite_finished(browser_run("web", now - 2 * DAY, "old", root))
    first.suite_finished(browser_run("web", now - 60, "new", root))
    first.close()
    assert (root / "old" / "dash__home" / "screenshot.png").is_file()
    again = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    again.start()  # retention runs at start
    try:
        assert again.run("old") is None
        assert not (root / "old").exists()
        assert (root / "new" / "dash__home" / "trace.zip").is_file()
    finally:
        again.close()


def test_artifacts_count_against_the_size_limit(path: Path) -> None:
    now = time.time()
    root = path.parent / "artifacts"
    store = RunStore(path, retention_seconds=7 * DAY, max_bytes=2 * MIB)
    store.start()
    try:
        for i in range(10):  # 10 runs of 2 x 256 KiB artifacts: 5 MiB
            store.suite_finished(browser_run("web", now - 100 + i, f"r{i}", root, 256 * 1024))
        store.flush()
        store._maintain_guarded()  # the writer does it every 100 writes or 60 s
        kept = sorted(d.name for d in root.iterdir())
        on_disk = artifacts_module.dir_bytes(root)
        db = sqlite3.connect(path)
        assert on_disk + RunStore.used_bytes(db) <= 2 * MIB
        db.close()
        assert "r9" in kept
        assert "r0" not in kept  # the oldest went first
        assert [r["run_id"] for r in store.runs(limit=500)[0]] == [
            f"r{i}" for i in range(9, -1, -1) if f"r{i}" in kept
        ]
    finally:
        store.close()


def test_artifacts_of_runs_never_stored_go_after_a_grace_period(path: Path) -> None:
    root = path.parent / "artifacts"
    for name in ("fresh", "stale"):
        (root / name / "t").mkdir(parents=True)
        (root / name / "t" / "screenshot.png").write_bytes(b"\x89PNG")
    hours_ago = time.time() - 2 * 3600
    os.utime(root / "stale", (hours_ago, hours_ago))
    store = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    store.start()
    store.close()
    assert (root / "fresh" / "t" / "screenshot.png").is_file()  # its run may be on its way
    assert not (root / "stale").exists()


def test_damaged_artifacts_never_break_the_store(path: Path) -> None:
    now = time.time()
    root = path.parent / "artifacts"
    root.mkdir(parents=True)
    (root / "a-file-not-a-dir").write_bytes(b"x")
    outside = path.parent / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (root / "link").symlink_to(outside)
    locked = root / "locked"
    (locked / "t").mkdir(parents=True)
    locked.chmod(0)
    store = RunStore(path, retention_seconds=DAY, max_bytes=256 * MIB)
    try:
        store.start()
        store.suite_finished(browser_run("web", now - 2 * DAY, "old", root))
        store.suite_finished(run("s", ("t", Outcome.PASSED), at=now, run_id="new"))
        store.flush()
        store._maintain_guarded()
        assert [r["run_id"] for r in store.runs()[0]] == ["new"]
        assert not (root / "old").exists()
        assert (outside / "keep.txt").read_text() == "mine"  # a symlink is never followed
    finally:
        store.close()
        locked.chmod(0o755)


def test_a_fresh_directory_of_a_run_not_stored_yet_deletes_no_stored_run(path: Path) -> None:
    root = path.parent / "artifacts"
    (root / "writing" / "t").mkdir(parents=True)
    (root / "writing" / "t" / "trace.zip").write_bytes(bytes(2 * MIB))  # over the limit alone
    store = RunStore(path, retention_seconds=DAY, max_bytes=1 * MIB)
    store.start()
    try:
        store.suite_finished(run("s", ("t", Outcome.PASSED), at=time.time(), run_id="kept"))
        store.flush()
        store._maintain_guarded()
        assert [r["run_id"] for r in store.runs()[0]] == ["kept"]
        assert (root / "writing" / "t" / "trace.zip").is_file()
    finally:
        store.close()
