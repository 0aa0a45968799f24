"""The runner: outcomes, timing, timeouts, retries, cleanups, subtests and steps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import anyio
import pytest

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import Outcome
from synthetic_exporter.core.settings import Settings
from tests.engine_helpers import by_name, run_suites, suite_result

SettingsFor = Callable[..., Settings]


async def test_every_outcome_is_reported(settings_for: SettingsFor) -> None:
    suite = Suite("outcomes", stop_on_failure=False)
    attempts = {"n": 0}

    @suite.test
    async def passes(t: T) -> None:
        t.log("fine")

    @suite.test
    async def fails_by_assert(t: T) -> None:
        assert 1 + 1 == 3

    @suite.test
    async def fails_by_call(t: T) -> None:
        t.fail("first problem")
        t.fail("second problem")
        t.log("still running")

    @suite.test
    async def errors(t: T) -> None:
        raise KeyError("customer")

    @suite.test(timeout=0.05)
    async def times_out(t: T) -> None:
        await anyio.sleep(5)

    @suite.test
    async def skips(t: T) -> None:
        t.skip("not on weekends")

    @suite.test(retries=2)
    async def flaky(t: T) -> None:
        attempts["n"] += 1
        assert attempts["n"] >= 2, "first attempt fails"

    recorder = await run_suites(settings_for(), [suite])
    results = by_name(recorder.tests)
    outcomes = {name.split("/")[1]: r.outcome for name, r in results.items()}
    assert outcomes == {
        "passes": Outcome.PASSED,
        "fails_by_assert": Outcome.FAILED,
        "fails_by_call": Outcome.FAILED,
        "errors": Outcome.ERROR,
        "times_out": Outcome.TIMEOUT,
        "skips": Outcome.SKIPPED,
        "flaky": Outcome.FLAKY,
    }
    assert results["outcomes/fails_by_call"].message == "first problem; second problem"
    assert [line.message for line in results["outcomes/fails_by_call"].logs][-1] == "still running"
    assert results["outcomes/errors"].message == "KeyError: 'customer'"
    assert "test_runner.py" in results["outcomes/errors"].traceback
    assert "synthetic_exporter" not in results["outcomes/errors"].traceback
    assert results["outcomes/times_out"].message == "test timed out after 0.05s"
    assert results["outcomes/skips"].message == "not on weekends"
    flaky_result = results["outcomes/flaky"]
    assert flaky_result.attempts == 2
    assert "first attempt fails" in flaky_result.message
    assert suite_result(recorder, "outcomes").outcome is Outcome.ERROR


async def test_fatal_stops_the_test_and_is_not_swallowed(settings_for: SettingsFor) -> None:
    suite = Suite("fatal")
    reached = []

    @suite.test
    async def stops(t: T) -> None:
        try:
            t.fatal("cannot go on")
        except Exception:  # a check's broad except must not swallow fatal
            reached.append("swallowed")
        reached.append("after")

    recorder = await run_suites(settings_for(), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.FAILED
    assert result.message == "cannot go on"
    assert reached == []


async def test_stop_on_failure_skips_later_tests(settings_for: SettingsFor) -> None:
    suite = Suite("scenario")

    @suite.test
    async def first(t: T) -> None:
        raise RuntimeError("boom")

    @suite.test
    async def second(t: T) -> None:
        pass

    recorder = await run_suites(settings_for(), [suite])
    second_result = by_name(recorder.tests)["scenario/second"]
    assert second_result.outcome is Outcome.SKIPPED
    assert second_result.message == "earlier test 'first' error"


async def test_state_is_shared_by_the_tests_of_one_run(settings_for: SettingsFor) -> None:
    suite = Suite("stateful")
    seen = []

    @suite.test
    async def write(t: T) -> None:
        t.state["customer"] = "cus_1"

    @suite.test
    def read(t: T) -> None:
        seen.append(t.state["customer"])

    await run_suites(settings_for(), [suite])
    await run_suites(settings_for(), [suite])
    assert seen == ["cus_1", "cus_1"]


async def test_cleanups_run_lifo_after_timeout_each_bounded(settings_for: SettingsFor) -> None:
    suite = Suite("cleanups")
    order: list[str] = []

    async def slow_cleanup() -> None:
        order.append("slow started")
        await anyio.sleep(10)

    def failing_cleanup() -> None:
        order.append("failing")
        raise ValueError("could not delete")

    @suite.test(timeout=0.1)
    async def hangs(t: T) -> None:
        t.cleanup(lambda: order.append("first registered"))
        t.cleanup(failing_cleanup)
        t.cleanup(slow_cleanup)
        await anyio.sleep(10)

    started = time.monotonic()
    recorder = await run_suites(settings_for(cleanup_timeout=0.2), [suite])
    elapsed = time.monotonic() - started
    (result,) = recorder.tests
    assert result.outcome is Outcome.TIMEOUT
    assert order == ["slow started", "failing", "first registered"]
    failures = {f.name: f.message for f in result.cleanup_failures}
    assert failures == {
        "slow_cleanup": "timed out after 0.2s",
        "failing_cleanup": "ValueError: could not delete",
    }
    assert elapsed < 3
    assert result.duration_seconds == pytest.approx(0.1, abs=0.08)


async def test_async_cleanup_returned_by_a_lambda_is_awaited(settings_for: SettingsFor) -> None:
    suite = Suite("lambda_cleanup")
    done = []

    async def delete() -> None:
        done.append("deleted")

    @suite.test
    async def creates(t: T) -> None:
        t.cleanup(lambda: delete())

    await run_suites(settings_for(), [suite])
    assert done == ["deleted"]


async def test_suite_timeout_cancels_and_skips_the_rest(settings_for: SettingsFor) -> None:
    suite = Suite("slow_suite", timeout=0.2)

    @suite.test(timeout=5)
    async def long(t: T) -> None:
        await anyio.sleep(5)

    @suite.test
    async def never(t: T) -> None:
        pass

    recorder = await run_suites(settings_for(), [suite])
    results = by_name(recorder.tests)
    assert results["slow_suite/long"].outcome is Outcome.TIMEOUT
    assert results["slow_suite/long"].message == "suite timeout of 0.2s exceeded"
    assert results["slow_suite/never"].outcome is Outcome.SKIPPED


async def test_sync_test_runs_in_a_thread_without_skewing_async_timing(
    settings_for: SettingsFor,
) -> None:
    blocking = Suite("blocking")
    timing = Suite("timing")

    @blocking.test
    def sleeps_a_second(t: T) -> None:
        time.sleep(1)

    @timing.test
    async def waits_50ms(t: T) -> None:
        await anyio.sleep(0.2)  # let the blocking test start first
        started = time.monotonic()
        await anyio.sleep(0.05)
        t.state["measured"] = time.monotonic() - started

    recorder = await run_suites(settings_for(), [blocking, timing])
    results = by_name(recorder.tests)
    assert results["blocking/sleeps_a_second"].outcome is Outcome.PASSED
    assert results["blocking/sleeps_a_second"].duration_seconds == pytest.approx(1, abs=0.2)
    assert results["timing/waits_50ms"].duration_seconds == pytest.approx(0.25, abs=0.05)


async def test_subtests_are_reported_as_test_slash_sub(settings_for: SettingsFor) -> None:
    suite = Suite("parent")

    @suite.test
    async def checks(t: T) -> None:
        async def good(sub: T) -> None:
            sub.log("inside")

        async def bad(sub: T) -> None:
            assert sub.state["x"] == 2

        t.state["x"] = 1
        assert await t.run("good", good) is True
        assert await t.run("bad", bad) is False
        t.log("parent continues")

    recorder = await run_suites(settings_for(), [suite])
    names = [r.name for r in recorder.tests]
    assert names == ["checks/good", "checks/bad", "checks"]
    results = by_name(recorder.tests)
    assert results["parent/checks/good"].outcome is Outcome.PASSED
    assert results["parent/checks/bad"].outcome is Outcome.FAILED
    assert results["parent/checks"].outcome is Outcome.FAILED
    assert "subtest 'bad' failed" in results["parent/checks"].message


async def test_a_subtest_cut_by_its_parents_timeout_is_reported(settings_for: SettingsFor) -> None:
    suite = Suite("cut")

    @suite.test(timeout=0.2)
    async def parent(t: T) -> None:
        async def slow(sub: T) -> None:
            await anyio.sleep(5)

        await t.run("slow", slow)

    recorder = await run_suites(settings_for(), [suite])
    results = by_name(recorder.tests)
    assert results["cut/parent/slow"].outcome is Outcome.TIMEOUT
    assert results["cut/parent/slow"].message == (
        "timed out: the parent test's time limit was reached"
    )
    assert results["cut/parent"].outcome is Outcome.TIMEOUT


async def test_steps_are_timed(settings_for: SettingsFor) -> None:
    suite = Suite("steps")

    @suite.test
    async def has_steps(t: T) -> None:
        async with t.step("wait"):
            await anyio.sleep(0.05)
        with pytest.raises(ZeroDivisionError):
            async with t.step("broken"):
                _ = 1 / 0

    recorder = await run_suites(settings_for(), [suite])
    (result,) = recorder.tests
    steps = {s.name: s for s in result.steps}
    assert steps["wait"].ok is True
    assert steps["wait"].duration_seconds == pytest.approx(0.05, abs=0.03)
    assert steps["broken"].ok is False


async def test_secrets_never_reach_results(settings_for: SettingsFor) -> None:
    suite = Suite("secretive")

    @suite.test
    async def leaks(t: T) -> None:
        token = t.secret("api_key")
        t.log(f"using {token}")
        raise RuntimeError(f"rejected {token}")

    settings = settings_for(secrets={"api_key": "sk-very-secret"})
    recorder = await run_suites(settings, [suite])
    (result,) = recorder.tests
    assert "sk-very-secret" not in repr(result)
    assert result.message == "RuntimeError: rejected ***"


async def test_unknown_target_names_the_setting(settings_for: SettingsFor) -> None:
    suite = Suite("targets")

    @suite.test
    async def uses_api(t: T) -> None:
        t.client("api")

    recorder = await run_suites(settings_for(), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.ERROR
    assert "SYNTHETIC_TARGETS__API__BASE_URL" in result.message


ESCAPES: list[type[BaseException]] = [
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
    asyncio.CancelledError,
]


@pytest.mark.parametrize("escape", ESCAPES, ids=lambda e: e.__name__)
async def test_any_base_exception_from_check_code_is_that_tests_error(
    settings_for: SettingsFor, escape: type[BaseException]
) -> None:
    suite = Suite("rogue", stop_on_failure=False)

    @suite.test
    async def in_async_test(t: T) -> None:
        raise escape()

    @suite.test
    def in_sync_test(t: T) -> None:
        raise escape()

    @suite.test
    async def in_subtest(t: T) -> None:
        async def sub(t: T) -> None:
            raise escape()

        await t.run("sub", sub)

    @suite.test
    async def in_cleanup(t: T) -> None:
        def bad() -> None:
            raise escape()

        t.cleanup(bad, name="bad cleanup")

    @suite.test
    async def still_runs(t: T) -> None:
        t.log("after the rogue tests")

    recorder = await run_suites(settings_for(), [suite])
    results = by_name(recorder.tests)
    name = escape.__name__
    assert results["rogue/in_async_test"].outcome is Outcome.ERROR
    assert results["rogue/in_async_test"].message == name
    assert results["rogue/in_sync_test"].outcome is Outcome.ERROR
    assert results["rogue/in_sync_test"].message == name
    assert results["rogue/in_subtest/sub"].outcome is Outcome.ERROR
    assert results["rogue/in_subtest"].outcome is Outcome.FAILED
    failures = results["rogue/in_cleanup"].cleanup_failures
    assert [(f.name, f.message) for f in failures] == [("bad cleanup", name)]
    assert results["rogue/still_runs"].outcome is Outcome.PASSED


async def test_a_test_that_blocks_past_its_timeout_is_a_timeout(settings_for: SettingsFor) -> None:
    suite = Suite("blocking")

    @suite.test(timeout=0.1)
    async def holds_the_loop(t: T) -> None:
        time.sleep(0.3)  # noqa: ASYNC251  # the point of the test

    recorder = await run_suites(settings_for(), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.TIMEOUT
    assert result.message.startswith("test timed out after 0.1s (it ran 0.3")
    assert "blocking call" in result.message


async def test_cleanups_and_janitors_share_a_budget_of_one_interval(
    settings_for: SettingsFor,
) -> None:
    suite = Suite("slow-cleanups", interval=0.5)

    @suite.test
    async def registers(t: T) -> None:
        for n in range(3):
            t.cleanup(lambda: anyio.sleep(0.3), name=f"sleep {n}")

    started = time.monotonic()
    recorder = await run_suites(settings_for(cleanup_timeout=10), [suite])
    took = time.monotonic() - started
    (result,) = recorder.tests
    errors = [f.message for f in result.cleanup_failures]
    # LIFO: "sleep 2" finishes (0.3 s), "sleep 1" is cut at the budget, "sleep 0" never runs.
    assert [f.name for f in result.cleanup_failures] == ["sleep 1", "sleep 0"]
    assert errors[0].startswith("timed out after 0.")
    assert errors[1] == "not run: the clean-up time budget was spent"
    assert took < 1.0


async def test_secrets_in_subtest_step_and_cleanup_names_are_masked(
    settings_for: SettingsFor,
) -> None:
    suite = Suite("named")
    secret = "hunter2-very-secret"

    @suite.test
    async def uses_names(t: T) -> None:
        value = t.secret("token")

        async def sub(t: T) -> None:
            pass

        await t.run(f"sub {value}", sub)
        async with t.step(f"step {value}"):
            pass

        def fails() -> None:
            raise RuntimeError("no")

        t.cleanup(fails, name=f"cleanup {value}")

    recorder = await run_suites(settings_for(secrets={"token": secret}), [suite])
    names = [r.name for r in recorder.tests]
    assert names == ["uses_names/sub ***", "uses_names"]
    parent = recorder.tests[1]
    assert [s.name for s in parent.steps] == ["step ***"]
    assert [f.name for f in parent.cleanup_failures] == ["cleanup ***"]
    assert secret not in repr(recorder.suites)
