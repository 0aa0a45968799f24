"""History: latest result per suite and a bounded list of recent runs."""

from __future__ import annotations

from synthetic_exporter.core.results import Outcome
from synthetic_exporter.exporter.history import History
from tests.factories import make_suite


def test_keeps_latest_per_suite_and_a_bounded_newest_first_history() -> None:
    history = History(size=3)
    for at in (1, 2, 3, 4):
        history.suite_finished(make_suite("signup", ("create", Outcome.PASSED), at=at))
    history.suite_finished(make_suite("invoices", ("issue", Outcome.FAILED), at=5, message="boom"))
    runs = history.recent()["runs"]
    assert [(r["suite"], r["ended_at"]) for r in runs] == [
        ("invoices", 5),
        ("signup", 4),
        ("signup", 3),
    ]
    assert runs[0]["failures"] == [{"test": "issue", "outcome": "failed", "message": "boom"}]
    assert [r["ended_at"] for r in history.recent(suite="signup", limit=1)["runs"]] == [4]
    latest = {s["suite"]: s for s in history.results()["suites"]}
    assert latest["signup"]["ended_at"] == 4
    assert latest["invoices"]["tests"][0]["full_name"] == "invoices/issue"
