"""Call check code (sync or async) without letting it stall the event loop or the agent."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread


async def call(func: Callable[..., Any], *args: Any) -> Any:
    """Await an async function; run a sync one in a worker thread, awaiting what it returns.

    A sync function that returns an awaitable (``lambda: client.delete(url)``) has that
    awaitable awaited on the event loop.
    """
    if inspect.iscoroutinefunction(func):
        return await func(*args)
    result = await anyio.to_thread.run_sync(lambda: func(*args), abandon_on_cancel=True)
    if inspect.isawaitable(result):
        return await result
    return result


def describe_error(exc: BaseException) -> str:
    """Return ``Type: message`` for an exception, or the message of an assertion."""
    text = str(exc).strip()
    if isinstance(exc, AssertionError):
        return text or "assertion failed"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def call_bounded(func: Callable[..., Any], *args: Any, limit: float) -> str | None:
    """Run clean-up code shielded from cancellation within ``limit`` s; return an error or None."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(limit) as scope:
        try:
            await call(func, *args)
        except Exception as exc:
            return describe_error(exc)
    return f"timed out after {limit:g}s" if scope.cancelled_caught else None
