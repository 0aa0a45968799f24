"""The coordinator: dependency order, transitive skips, concurrency, no overlap."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import Outcome
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.engine.graph import with_dependencies
from tests.engine_helpers import run_suites, suite_result

SettingsFor = Callable[..., Settings]


def chain(fail_first: bool) -> tuple[list[Suite], list[str]]:
    """Return signup <- invoices <- payments, and a log of start/end events."""
    events: list[str] = []
    signup, invoices = Suite("signup"), Suite("invoices", depends_on=["signup"])
    payments = Suite("payments", depends_on=["invoices"])

    @signup.test
    async def sign_up(t: T) -> None:
        events.append("signup start")
        await anyio.sleep(0.05)
        events.append("signup end")
        assert not fail_first, "signup is down"

    @invoices.test
    async def invoice(t: T) -> None:
        events.append("invoices start")

    @payments.test
    async def pay(t: T) -> None:
        events.append("payments start")

    return [payments, invoices, signup], events


async def test_dependents_run_after_their_dependencies(settings_for: SettingsFor) -> None:
    suites, events = chain(fail_first=False)
    recorder = await run_suites(settings_for(), suites)
    assert events == ["signup start", "signup end", "invoices start", "payments start"]
    assert all(s.outcome is Outcome.PASSED for s in recorder.suites)


async def test_failed_dependency_skips_dependents_transitively(settings_for: SettingsFor) -> None:
    suites, events = chain(fail_first=True)
    recorder = await run_suites(settings_for(), suites)
    assert events == ["signup start", "signup end"]
    invoices = suite_result(recorder, "invoices")
    payments = suite_result(recorder, "payments")
    assert invoices.outcome is Outcome.SKIPPED
    assert invoices.skip_reason == "dependency 'signup' failed"
    assert payments.skip_reason == ("dependency 'invoices' was skipped: dependency 'signup' failed")
    (skipped_test,) = payments.tests
    assert skipped_test.outcome is Outcome.SKIPPED
    assert skipped_test.message == payments.skip_reason


async def test_selecting_a_suite_runs_its_dependencies(settings_for: SettingsFor) -> None:
    suites, _events = chain(fail_first=False)
    recorder = await run_suites(settings_for(), suites, names=["invoices"])
    assert [s.suite for s in recorder.suites] == ["signup", "invoices"]


def test_with_dependencies_orders_dependencies_first() -> None:
    suites, _ = chain(fail_first=False)
    by_name = {s.name: s for s in suites}
    assert with_dependencies(by_name, ["payments"]) == ["signup", "invoices", "payments"]


async def test_independent_suites_run_concurrently_up_to_the_limit(
    settings_for: SettingsFor,
) -> None:
    running = {"now": 0, "max": 0}
    suites = []
    for i in range(6):
        suite = Suite(f"s{i}")

        @suite.test
        async def work(t: T) -> None:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
            await anyio.sleep(0.1)
            running["now"] -= 1

        suites.append(suite)
    started = time.monotonic()
    await run_suites(settings_for(concurrency=3), suites)
    assert running["max"] == 3
    assert time.monotonic() - started == pytest.approx(0.2, abs=0.15)
