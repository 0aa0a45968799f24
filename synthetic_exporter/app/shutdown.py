"""Shutdown on SIGTERM or SIGINT: drain running tests, cancel, and bound the whole wait."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from loguru import logger


def exit_after(grace: float) -> threading.Timer:
    """Start a timer that ends the process with status 0 if shutdown takes longer than ``grace``."""

    def force() -> None:
        logger.error(f"shutdown took longer than {grace:g}s; exiting without waiting")
        os._exit(0)

    timer = threading.Timer(grace, force)
    timer.daemon = True
    timer.start()
    return timer


async def _drain(
    drain: Callable[[], Awaitable[None]], wait: float, signum: int, signals: AsyncIterator[int]
) -> None:
    """Await ``drain`` for at most ``wait`` seconds, or until the next signal."""
    logger.warning(
        f"received {signal.Signals(signum).name}: no new runs; running tests get {wait:g}s to"
        " finish before they are cancelled"
    )
    async with anyio.create_task_group() as draining:

        async def drain_then_stop() -> None:
            with anyio.move_on_after(wait):
                await drain()
            draining.cancel_scope.cancel()

        draining.start_soon(drain_then_stop)
        async for _ in signals:  # a second signal: no more waiting
            draining.cancel_scope.cancel()


# On SIGTERM, the share of the shutdown grace that running tests get to finish on their own
# (their creates answered and recorded) before they are cancelled; cleanups get the rest.
DRAIN_SHARE = 1 / 3


async def cancel_on_signal(
    scope: anyio.CancelScope,
    grace: float,
    stopped: list[int],
    drain: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """On SIGTERM or SIGINT, let running tests finish (``drain``, bounded), then cancel ``scope``.

    Cleanups still run after the cancellation; the whole shutdown is bounded by ``grace``. A
    second signal cancels at once.
    """
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            stopped.append(signum)
            exit_after(grace)
            if drain is not None:
                await _drain(drain, grace * DRAIN_SHARE, signum, signals)
            logger.warning(f"received {signal.Signals(signum).name}: cancelling running tests")
            scope.cancel()
            return
