"""The cleanup ledger: durable entries, back-off, orphans of a dead process, intents."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from synthetic_exporter.engine.ledger import BACKOFF_BASE_SECONDS, Ledger


def test_entries_of_a_run_are_returned_newest_first_and_removed(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3", owner="me")
    first = ledger.add("signup", "customer", "cus_1", {"email": "a@x"}, "run1")
    second = ledger.add("signup", "customer", "cus_2", {}, "run1")
    ledger.add("signup", "customer", "cus_3", {}, "run2")
    entries = ledger.for_run("run1")
    assert [e.id for e in entries] == [second, first]
    assert entries[1].data == {"email": "a@x"}
    ledger.remove(first)
    assert [e.resource_id for e in ledger.for_run("run1")] == ["cus_2"]


def test_failed_cleanups_back_off_and_count(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3", owner="me")
    entry = ledger.add("signup", "customer", "cus_1", {}, "run1")
    ledger.mark_failed(entry, "HTTP 503", now=1000)
    assert ledger.due(now=1000 + BACKOFF_BASE_SECONDS - 1) == []
    (due,) = ledger.due(now=1000 + BACKOFF_BASE_SECONDS)
    assert (due.attempts, due.last_error, due.state) == (1, "HTTP 503", "pending")
    ledger.mark_failed(entry, "HTTP 503", now=2000)
    assert ledger.due(now=2000 + 2 * BACKOFF_BASE_SECONDS - 1) == []
    assert ledger.pending_by_suite() == {"signup": 1}
    assert (ledger.pending_count("signup"), ledger.pending_count("invoices")) == (1, 0)


def test_entries_survive_the_process_and_orphans_are_adopted(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    dead = Ledger(path, owner="dead")
    dead.add("signup", "customer", "cus_1", {}, "run1")
    alive = Ledger(path, owner="alive")
    alive.add("signup", "customer", "cus_2", {}, "run2")
    assert alive.adopt_orphans() == 1
    assert [e.resource_id for e in alive.due()] == ["cus_1"]
    assert [e.resource_id for e in alive.for_run("run2")] == ["cus_2"]


def test_an_intent_is_recorded_before_the_create_and_resolved_with_its_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3", owner="me")
    ledger.intend("signup", "customer", "synthetic-run1-1", "run1")
    (intent,) = ledger.for_run("run1")
    assert (intent.key, intent.resource_id, intent.unresolved) == ("synthetic-run1-1", "", True)
    assert ledger.holdings() == (set(), {"synthetic-run1-1"})

    ledger.resolve("signup", "customer", "synthetic-run1-1", "cus_1", {"email": "a@x"}, "run1")
    (entry,) = ledger.for_run("run1")
    assert (entry.id, entry.resource_id, entry.data, entry.unresolved) == (
        intent.id,
        "cus_1",
        {"email": "a@x"},
        False,
    )
    assert ledger.holdings() == ({"cus_1"}, set())


@pytest.mark.parametrize(
    ("kind", "key", "run_id"),
    [
        ("invoice", "synthetic-run1-1", "run1"),  # another kind
        ("customer", "synthetic-run1-2", "run1"),  # a key never intended
        ("customer", "synthetic-run1-1", "run2"),  # another run's key
    ],
)
def test_only_the_runs_own_unresolved_intent_can_be_resolved(
    tmp_path: Path, kind: str, key: str, run_id: str
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3", owner="me")
    ledger.intend("signup", "customer", "synthetic-run1-1", "run1")
    with pytest.raises(LookupError, match="no unresolved"):
        ledger.resolve("signup", kind, key, "cus_1", {}, run_id)


def test_an_intent_resolves_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3", owner="me")
    ledger.intend("signup", "customer", "synthetic-run1-1", "run1")
    ledger.resolve("signup", "customer", "synthetic-run1-1", "cus_1", {}, "run1")
    with pytest.raises(LookupError, match=r"t\.intend"):
        ledger.resolve("signup", "customer", "synthetic-run1-1", "cus_2", {}, "run1")


def test_unresolved_intents_wait_for_the_orphan_sweep_not_the_retry_queue(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3", owner="me")
    intent = ledger.intend("signup", "customer", "synthetic-run1-1", "run1")
    ledger.release(intent)
    assert ledger.for_run("run1") == []
    assert ledger.due(now=float("inf")) == []  # nothing to hand a janitor yet
    assert ledger.pending_by_suite() == {}  # and not counted as a pending clean-up
    assert [e.key for e in ledger.unresolved()] == ["synthetic-run1-1"]
    assert ledger.holdings() == (set(), set())  # no live run holds its key any more

    ledger.found(intent, "cus_9")  # the sweep found it by its key
    assert ledger.unresolved() == []
    assert [e.resource_id for e in ledger.due()] == ["cus_9"]
    assert ledger.pending_count("signup") == 1


def test_intents_of_a_dead_process_are_adopted_as_unresolved(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path, owner="dead").intend("signup", "customer", "synthetic-run1-1", "run1")
    alive = Ledger(path, owner="alive")
    assert alive.adopt_orphans() == 1
    (intent,) = alive.unresolved()
    assert (intent.key, intent.state) == ("synthetic-run1-1", "pending")


def test_a_ledger_written_before_intents_gains_the_key_column(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE resources (id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT NOT NULL,"
        " kind TEXT NOT NULL, resource_id TEXT NOT NULL, data TEXT NOT NULL, owner TEXT NOT NULL,"
        " run_id TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('open', 'pending')),"
        " created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
        " last_error TEXT NOT NULL DEFAULT '', next_attempt_at REAL NOT NULL DEFAULT 0);"
        "INSERT INTO resources (suite, kind, resource_id, data, owner, run_id, state, created_at)"
        " VALUES ('signup', 'customer', 'cus_old', '{}', 'dead', 'run0', 'pending', 1);"
    )
    old.close()
    ledger = Ledger(path, owner="me")
    (entry,) = ledger.due()
    assert (entry.resource_id, entry.key, entry.unresolved) == ("cus_old", "", False)
    ledger.intend("signup", "customer", "synthetic-run1-1", "run1")
    assert [e.key for e in ledger.for_run("run1")] == ["synthetic-run1-1"]
