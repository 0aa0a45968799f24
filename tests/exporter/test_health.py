"""/healthz logic: pass, fail (with since), skipped by dependency, pending, stale."""

from __future__ import annotations

from synthetic_exporter.core.results import LoadError, Outcome
from synthetic_exporter.exporter.health import Health
from tests.factories import make_suite

P, F = Outcome.PASSED, Outcome.FAILED


def test_pending_until_every_suite_has_run_then_pass() -> None:
    health = Health(intervals={"signup": 60, "invoices": 60}, started_at=1000)
    code, body = health.report(now=1010)
    assert (code, body["status"]) == (503, "pending")
    health.suite_finished(make_suite("signup", ("create", P), at=1020))
    assert health.report(now=1021)[1]["status"] == "pending"
    health.suite_finished(make_suite("invoices", ("issue", P), at=1030))
    code, body = health.report(now=1031)
    assert (code, body["status"], body["failed"]) == (200, "pass", [])
    assert (body["last_run_started_at"], body["last_run_ended_at"]) == (1029, 1030)


def test_failure_names_the_test_with_message_and_since_and_skips_dependents() -> None:
    health = Health(intervals={"signup": 60, "invoices": 60}, started_at=1000)
    health.suite_finished(make_suite("signup", ("create", F), at=1010, message="assert 502 == 201"))
    health.suite_finished(
        make_suite(
            "invoices",
            ("issue", Outcome.SKIPPED),
            at=1011,
            skip_reason="dependency 'signup' failed",
        )
    )
    health.suite_finished(make_suite("signup", ("create", F), at=1070, message="assert 502 == 201"))
    code, body = health.report(now=1080)
    assert (code, body["status"]) == (503, "fail")
    assert body["failed"] == [
        {
            "test": "signup/create",
            "outcome": "failed",
            "message": "assert 502 == 201",
            "since": 1010,
        }
    ]
    assert body["skipped"] == [{"suite": "invoices", "reason": "dependency 'signup' failed"}]
    assert body["suites"] == {"signup": "fail", "invoices": "skipped"}
    health.suite_finished(make_suite("signup", ("create", P), at=1130))
    health.suite_finished(make_suite("invoices", ("issue", P), at=1131))
    code, body = health.report(now=1140)
    assert (code, body["status"]) == (200, "pass")


def test_stale_when_no_completed_run_within_twice_the_interval() -> None:
    health = Health(intervals={"signup": 60}, started_at=1000)
    assert health.report(now=1119)[1]["status"] == "pending"
    code, body = health.report(now=1121)
    assert (code, body["status"], body["stale"]) == (503, "stale", ["signup"])
    health.suite_finished(make_suite("signup", ("create", P), at=1130))
    assert health.report(now=1249)[0] == 200
    assert health.report(now=1251)[1]["status"] == "stale"


def test_load_errors_are_listed_without_failing() -> None:
    errors = (LoadError("checks/broken.py", 3, "SyntaxError: invalid syntax"),)
    health = Health(intervals={"signup": 60}, started_at=1000, load_errors=errors)
    health.suite_finished(make_suite("signup", ("create", P), at=1010))
    code, body = health.report(now=1011)
    assert code == 200
    assert body["load_errors"] == ["checks/broken.py:3: SyntaxError: invalid syntax"]
