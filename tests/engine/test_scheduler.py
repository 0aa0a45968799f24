"""The scheduler: prompt first runs, cadence without drift, overruns dropped, lag recorded."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import anyio
import pytest

from synthetic_exporter import Suite, T
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.graph import dependency_groups
from synthetic_exporter.engine.scheduler import Scheduler, first_offsets
from synthetic_exporter.engine.wiring import open_engine
from tests.engine_helpers import Recorder

SettingsFor = Callable[..., Settings]


async def schedule_for(
    settings: Settings, suites: list[Suite], intervals: dict[str, float], seconds: float
) -> tuple[Recorder, list[str], list[float]]:
    """Run the scheduler for ``seconds``; return results, overruns and lags."""
    by_name = {s.name: s for s in suites}
    recorder, overruns, lags = Recorder(), list[str](), list[float]()
    async with open_engine(settings, by_name) as engine:
        coordinator = Coordinator(engine=engine, suites=by_name, listener=recorder, concurrency=10)
        scheduler = Scheduler(
            coordinator=coordinator,
            intervals=intervals,
            on_overrun=overruns.append,
            on_lag=lags.append,
        )
        with anyio.move_on_after(seconds):
            await scheduler.run()
    return recorder, overruns, lags


async def test_runs_keep_their_cadence_without_drift(settings_for: SettingsFor) -> None:
    suite = Suite("steady")

    @suite.test
    async def takes_a_while(t: T) -> None:
        await anyio.sleep(0.05)

    recorder, overruns, lags = await schedule_for(
        settings_for(), [suite], {"steady": 0.25}, seconds=1.5
    )
    starts = [s.scheduled_at for s in recorder.suites]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) >= 5
    assert starts[0] - recorder.suites[0].started_at == pytest.approx(0, abs=0.05)
    assert all(gap == pytest.approx(0.25, abs=0.01) for gap in gaps)
    assert overruns == []
    assert max(lags) < 0.05
    assert all(s.lag_seconds == pytest.approx(0, abs=0.05) for s in recorder.suites)


async def test_an_overrun_is_recorded_not_queued(settings_for: SettingsFor) -> None:
    suite = Suite("slow")

    @suite.test
    async def slower_than_interval(t: T) -> None:
        await anyio.sleep(0.35)

    recorder, overruns, _ = await schedule_for(settings_for(), [suite], {"slow": 0.1}, seconds=0.9)
    assert 2 <= len(recorder.suites) <= 3
    assert len(overruns) >= 4
    assert set(overruns) == {"slow"}


async def test_dependents_wait_for_a_dependency_due_at_the_same_time(
    settings_for: SettingsFor,
) -> None:
    first, second = Suite("first"), Suite("second", depends_on=["first"])
    events = []

    @first.test
    async def a(t: T) -> None:
        await anyio.sleep(0.1)
        events.append("first")

    @second.test
    async def b(t: T) -> None:
        events.append("second")

    _recorder, _, _ = await schedule_for(
        settings_for(), [second, first], {"first": 10, "second": 10}, seconds=2.5
    )
    assert events == ["first", "second"]


def test_first_offsets_are_shared_by_a_dependency_group_and_short() -> None:
    a, b, c = Suite("a"), Suite("b", depends_on=["a"]), Suite("c")
    suites = {"a": a, "b": b, "c": c}
    assert dependency_groups(suites) == {"a": "a", "b": "a", "c": "c"}
    offsets = first_offsets(suites, {"a": 60, "b": 300, "c": 60})
    assert offsets["a"] == offsets["b"]
    assert all(0 <= o < 2 for o in offsets.values())
    assert max(first_offsets(suites, {"a": 0.5, "b": 1, "c": 1}).values()) < 0.5


async def test_with_nothing_to_schedule_the_scheduler_stays_alive(
    settings_for: SettingsFor,
) -> None:
    async with open_engine(settings_for(), {}) as engine:
        coordinator = Coordinator(engine=engine, suites={}, listener=Recorder(), concurrency=1)
        scheduler = Scheduler(coordinator=coordinator, intervals={})
        async with anyio.create_task_group() as group:
            await group.start(scheduler.run)
            await anyio.sleep(0.2)
            assert scheduler.is_alive()  # /-/healthy must not restart an agent with no checks
            group.cancel_scope.cancel()
    assert not scheduler.is_alive()
