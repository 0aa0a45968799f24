"""A watchdog thread that notices when the event loop is blocked, and by which line of code.

Every check, scrape and probe shares the one event loop. An ``async def`` test that calls
something blocking (``time.sleep``, a CPU-bound loop, a sync HTTP client) holds it: nothing else
runs until it lets go. The loop beats every :data:`BEAT_SECONDS`; a thread outside the loop
looks at the beat and, when it is older than the threshold, reads the loop thread's stack and
names the check code (file:line) holding it. When the loop beats again the block's length is
counted (``synthetic_exporter_event_loop_blocked_seconds_total``) and logged with that place.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from loguru import logger

from synthetic_exporter.core.frames import check_frames

BEAT_SECONDS = 0.1
DEFAULT_THRESHOLD_SECONDS = 1.0


def holder_of(thread_id: int) -> str:
    """Return ``file:line in function`` of the innermost check-code frame of a thread's stack.

    Falls back to the innermost frame of any code when no check code is on the stack.
    """
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "unknown"
    stack = traceback.extract_stack(frame)
    mine = check_frames(stack) or stack[-1:]
    if not mine:
        return "unknown"
    where = mine[-1]
    return f"{where.filename}:{where.lineno} in {where.name}"


@dataclass(slots=True)
class LoopWatchdog:
    """Beats on the event loop; a thread reports blocks longer than ``threshold`` seconds."""

    threshold: float = DEFAULT_THRESHOLD_SECONDS
    on_blocked: Callable[[float], None] = lambda seconds: None
    beat: float = field(default_factory=time.monotonic)
    holder: str = ""
    _loop_thread: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    async def run(self) -> None:
        """Beat until cancelled, with the watching thread running alongside."""
        self._loop_thread = threading.get_ident()
        self.beat = time.monotonic()
        watcher = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        watcher.start()
        try:
            while True:
                await anyio.sleep(BEAT_SECONDS)
                now = time.monotonic()
                late = now - self.beat - BEAT_SECONDS
                self.beat = now
                if late >= self.threshold:
                    self._report(late)
                else:
                    self.holder = ""  # seen by the thread at the edge of a shorter block
        finally:
            self._stop.set()

    def _report(self, seconds: float) -> None:
        where, self.holder = self.holder or "unknown (the watchdog did not see it)", ""
        self.on_blocked(seconds)
        logger.bind(blocked_seconds=round(seconds, 3), location=where).error(
            f"the event loop was blocked for {seconds:.3f}s by {where}: every other check, scrape"
            " and probe waited; use a plain def test (it runs in a thread) or await instead"
        )

    def _watch(self) -> None:
        """Look at the beat a few times a second; name the code holding a blocked loop."""
        while not self._stop.wait(BEAT_SECONDS):
            blocked = time.monotonic() - self.beat - BEAT_SECONDS
            if blocked >= self.threshold and not self.holder:
                self.holder = holder_of(self._loop_thread)
                logger.bind(location=self.holder).warning(
                    f"the event loop is blocked ({blocked:.1f}s so far) by {self.holder}"
                )
