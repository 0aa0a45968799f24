"""Call check code (sync or async) without letting it stall, stop or kill the agent.

Check code may raise anything: ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit`` or a
stray ``asyncio.CancelledError`` are that code's errors, never the agent's. Only a cancellation
that the agent itself started (a time limit, a shutdown) is let through: :func:`is_real_cancel`
tells the two apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

CLEANUP_DEADLINE: ContextVar[float] = ContextVar("cleanup_deadline", default=float("inf"))
"""When (``anyio.current_time()``) the clean-up budget of the running suite run ends."""


async def call(func: Callable[..., Any], *args: Any) -> Any:
    """Await an async function; run a sync one in a worker thread, awaiting what it returns.

    A sync function that returns an awaitable (``lambda: client.delete(url)``) has that
    awaitable awaited on the event loop.
    """
    if inspect.iscoroutinefunction(func):
        return await func(*args)
    result, error = await anyio.to_thread.run_sync(_capture, func, args, abandon_on_cancel=True)
    if error is not None:
        raise error  # raised here, not thrown into the task: GeneratorExit would close it
    if inspect.isawaitable(result):
        return await result
    return result


def _capture(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
    """Call ``func`` (in a worker thread); return its result or what it raised."""
    try:
        return func(*args), None
    except BaseException as exc:
        return None, exc


def is_cancellation(exc: BaseException) -> bool:
    """Tell whether ``exc`` is (or groups) the event loop's cancellation exception."""
    if isinstance(exc, BaseExceptionGroup):
        return any(is_cancellation(e) for e in exc.exceptions)
    return isinstance(exc, anyio.get_cancelled_exc_class())


async def is_real_cancel(exc: BaseException) -> bool:
    """Tell whether ``exc`` is a cancellation of the calling task that the agent started.

    Re-raises nothing itself: a cancel scope around the caller that was cancelled makes the
    checkpoint raise, which the caller lets through. A cancellation exception that check code
    raised on its own (``raise asyncio.CancelledError``) finds no cancelled scope and is
    reported as the check's error.
    """
    if not is_cancellation(exc):
        return False
    try:
        await anyio.lowlevel.checkpoint_if_cancelled()
    except anyio.get_cancelled_exc_class():
        return True
    return False


FORGOTTEN_AWAIT = " (a coroutine: did you forget `await`?)"


def describe_error(exc: BaseException) -> str:
    """Return ``Type: message`` for an exception, or the message of an assertion.

    An attribute or type error on a ``'coroutine' object`` (``r = t.http.get(...)`` then
    ``r.status_code``) gets a hint: the coroutine was never awaited.
    """
    text = str(exc).strip()
    if isinstance(exc, AssertionError):
        return text or "assertion failed"
    if isinstance(exc, AttributeError | TypeError) and "'coroutine' object" in text:
        text += FORGOTTEN_AWAIT
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def call_bounded(func: Callable[..., Any], *args: Any, limit: float) -> str | None:
    """Run clean-up code shielded from cancellation within ``limit`` s; return an error or None.

    Whatever the code raises (any ``BaseException``) becomes the returned error. Within a suite
    run, the run's clean-up budget (:data:`CLEANUP_DEADLINE`) shortens ``limit``.
    """
    limit = min(limit, CLEANUP_DEADLINE.get() - anyio.current_time())
    if limit <= 0:
        return "not run: the clean-up time budget was spent"
    with anyio.CancelScope(shield=True), anyio.move_on_after(limit) as scope:
        try:
            await call(func, *args)
        except BaseException as exc:
            if scope.cancel_called and is_cancellation(exc):
                raise  # our own time limit: move_on_after catches it
            return describe_error(exc)
    return f"timed out after {limit:g}s" if scope.cancelled_caught else None
