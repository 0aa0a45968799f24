"""The cleanup ledger: durable entries, back-off, orphans of a dead process."""

from __future__ import annotations

from pathlib import Path

from synthetic_exporter.ledger import BACKOFF_BASE_SECONDS, Ledger


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
