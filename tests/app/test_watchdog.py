"""The loop watchdog: a blocked event loop is noticed, located in check code and counted."""

from __future__ import annotations

import time

import anyio
import pytest

from synthetic_exporter.app.watchdog import LoopWatchdog


def hold_the_loop(seconds: float) -> None:
    """Stand-in for check code that blocks (this file counts as check code)."""
    time.sleep(seconds)


async def test_a_blocked_loop_is_counted_and_located(
    caplog_loguru: pytest.LogCaptureFixture,
) -> None:
    blocks: list[float] = []
    watchdog = LoopWatchdog(threshold=0.3, on_blocked=blocks.append)
    async with anyio.create_task_group() as group:
        group.start_soon(watchdog.run)
        await anyio.sleep(0.3)
        hold_the_loop(0.8)
        await anyio.sleep(0.3)
        group.cancel_scope.cancel()

    assert len(blocks) == 1
    assert 0.6 <= blocks[0] <= 1.0
    messages = [r.getMessage() for r in caplog_loguru.records]
    located = [m for m in messages if "test_watchdog.py" in m and "in hold_the_loop" in m]
    assert any("is blocked" in m for m in located), messages
    assert any(m.startswith("the event loop was blocked for 0.") for m in located), messages


async def test_short_pauses_are_not_blocks() -> None:
    blocks: list[float] = []
    watchdog = LoopWatchdog(threshold=0.5, on_blocked=blocks.append)
    async with anyio.create_task_group() as group:
        group.start_soon(watchdog.run)
        for _ in range(3):
            hold_the_loop(0.2)
            await anyio.sleep(0.15)
        group.cancel_scope.cancel()
    assert blocks == []
    assert watchdog.holder == ""
