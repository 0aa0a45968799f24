"""Run each suite on its own interval, without drift, overlap or queueing.

Slots are anchored at start-up: a suite with interval ``i`` and first offset ``o`` is due at
``start + o + k*i``. A slot that arrives while the suite still runs is an overrun: recorded
and dropped, never queued. First offsets spread suites over a couple of seconds, the same
offset for every suite of a dependency group so that their first runs share one batch.
"""

from __future__ import annotations

import heapq
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import anyio
import anyio.abc
from loguru import logger

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.graph import dependency_groups

FIRST_RUN_SPREAD_SECONDS = 2.0
SAME_SLOT_SECONDS = 0.001


def first_offsets(suites: Mapping[str, Suite], intervals: Mapping[str, float]) -> dict[str, float]:
    """Return each suite's first-run offset: spread by group, never beyond its interval."""
    groups = dependency_groups(suites)
    spread = min([FIRST_RUN_SPREAD_SECONDS, *intervals.values()])
    return {name: (zlib.crc32(groups[name].encode()) % 1000) / 1000 * spread for name in suites}


@dataclass(slots=True, kw_only=True)
class Scheduler:
    """Wakes up for each due slot and hands the due suites to the coordinator."""

    coordinator: Coordinator
    intervals: Mapping[str, float]
    on_overrun: Callable[[str], None] = lambda name: None
    on_lag: Callable[[float], None] = lambda lag: None
    running: bool = False
    draining: bool = False
    """Set on shutdown: no new run starts; running ones finish."""

    def is_alive(self) -> bool:
        """Return whether the scheduling loop is running."""
        return self.running

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Schedule forever (until cancelled)."""
        self.running = True
        try:
            await self._loop(task_status)
        finally:
            self.running = False

    async def _loop(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        suites = self.coordinator.suites
        started_at = anyio.current_time()
        offsets = first_offsets(suites, self.intervals)
        due = [(started_at + offsets[name], name) for name in suites]
        heapq.heapify(due)
        task_status.started()
        if not due:  # nothing to schedule (no checks, or an empty shard): stay alive, idle
            await anyio.sleep_forever()
        async with anyio.create_task_group() as group:
            while due:
                slot = due[0][0]
                await anyio.sleep_until(slot)
                if self.draining:
                    await anyio.sleep_forever()
                now = anyio.current_time()
                batch: list[tuple[str, float]] = []
                while due and due[0][0] <= now + SAME_SLOT_SECONDS:
                    slot_time, name = heapq.heappop(due)
                    batch.append((name, slot_time))
                    heapq.heappush(due, (self._next_slot(name, slot_time, now), name))
                free = set(self.coordinator.reserve(name for name, _ in batch))
                for name, slot_time in batch:
                    lag = max(now - slot_time, 0.0)
                    self.on_lag(lag)
                    if name not in free:
                        logger.bind(suite=name).warning(
                            "suite still running at its next slot: overrun, slot skipped"
                        )
                        self.on_overrun(name)
                        continue
                    scheduled_wall = time.time() - (now - slot_time)
                    group.start_soon(self.coordinator.run_reserved, name, scheduled_wall, lag)

    def _next_slot(self, name: str, slot: float, now: float) -> float:
        """Return the first slot after ``now`` on the suite's own cadence (drops missed ones)."""
        interval = self.intervals[name]
        following = slot + interval
        if following <= now:
            missed = int((now - following) // interval) + 1
            following += missed * interval
        return following
