"""Supervised agent tasks: a death is logged and makes the agent not alive; cancels pass."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from synthetic_exporter.app.supervision import Liveness, supervised


async def dies() -> None:
    await anyio.lowlevel.checkpoint()
    raise RuntimeError("disk full")


async def raises_a_stray_cancel() -> None:
    await anyio.lowlevel.checkpoint()
    raise asyncio.CancelledError


async def returns() -> None:
    await anyio.lowlevel.checkpoint()


async def test_a_dead_task_is_recorded_and_logged(
    caplog_loguru: pytest.LogCaptureFixture,
) -> None:
    liveness = Liveness()
    async with anyio.create_task_group() as group:
        group.start_soon(supervised, liveness, "sweeper", dies)
        group.start_soon(supervised, liveness, "scheduler", raises_a_stray_cancel)
        group.start_soon(supervised, liveness, "watchdog", returns)
    assert not liveness.alive()
    assert liveness.dead == {
        "sweeper": "RuntimeError: disk full",
        "scheduler": "CancelledError",
        "watchdog": "returned",
    }
    assert "sweeper stopped: RuntimeError: disk full" in liveness.problem()
    messages = [r.getMessage() for r in caplog_loguru.records]
    assert any(m.startswith("agent task 'sweeper' died: RuntimeError: disk full") for m in messages)


async def test_a_real_cancellation_is_not_a_death() -> None:
    liveness = Liveness()
    async with anyio.create_task_group() as group:
        group.start_soon(supervised, liveness, "forever", anyio.sleep_forever)
        await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    assert liveness.alive()
    assert liveness.problem() == ""
