"""Closing work that a cancellation cannot cut short."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import anyio


async def run_to_end(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` (which must bound its own time) to its end in a task of its own.

    A shielded cancel scope is not enough on asyncio: a cancellation delivered to the task just
    before it entered the scope still interrupts the first await inside. Closing a page or a
    context must not be skipped that way (it would leak), so it runs in a separate task that
    this one waits for however often it is cancelled meanwhile; the cancellation goes on after.
    """
    task = asyncio.ensure_future(work)
    with anyio.CancelScope(shield=True):
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
