"""Supervision of the agent's long-running tasks: none may die silently.

``serve`` runs a few tasks for the life of the process (scheduler, HTTP server, sweeps,
watchdog). If one of them ever ends by an error, or returns, the agent is half alive: it may
still answer scrapes while no check runs. :func:`supervised` logs why, with the traceback, and
records it in :class:`Liveness`, which ``/-/healthy`` reads: it then answers 503, so that
Kubernetes restarts the process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from loguru import logger

from synthetic_exporter.engine.invoke import describe_error, is_real_cancel


@dataclass(slots=True)
class Liveness:
    """The agent's tasks that have died, with why."""

    dead: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        """Return whether every supervised task is still running."""
        return not self.dead

    def problem(self) -> str:
        """Return why the agent is not alive ('' when it is)."""
        return "; ".join(f"{name} stopped: {why}" for name, why in self.dead.items())

    def died(self, name: str, why: str) -> None:
        """Record a task's death."""
        self.dead[name] = why


async def supervised(
    liveness: Liveness,
    name: str,
    func: Callable[..., Awaitable[Any]],
    *args: Any,
    task_status: anyio.abc.TaskStatus[Any] | None = None,
) -> None:
    """Run ``func(*args)`` for the life of the agent; record and log it if it ever stops.

    With ``task_status`` (``await group.start(supervised, ...)``), ``func`` is given it too.
    """
    try:
        if task_status is None:
            await func(*args)
        else:
            await func(*args, task_status=task_status)
    except BaseException as exc:
        if await is_real_cancel(exc):
            raise
        why = describe_error(exc)
        liveness.died(name, why)
        logger.opt(exception=exc).critical(
            f"agent task {name!r} died: {why}; /-/healthy now fails so that the agent is restarted"
        )
        return
    await anyio.lowlevel.checkpoint_if_cancelled()  # returned because the agent is stopping
    liveness.died(name, "returned")
    logger.critical(f"agent task {name!r} stopped; /-/healthy now fails")
