"""One render of the exposition for every scraper asking at about the same time.

Fifty scrapers arriving together used to render (and gzip) fifty copies of the same bytes. The
cache keeps one rendered body per format and encoding: a request joins a render in flight, or
reuses a finished one while nothing it shows has changed (the ``version`` callable) and it is
younger than ``max_age``. The age bound exists because some series change all the time
without a version (process CPU and memory, the schedule-lag histogram): at most ``max_age``
old, they are as fresh as any scraper can tell. A body is dropped ``max_age`` after it was
rendered, so that nothing large stays resident between scrapes.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread
from prometheus_client.exposition import choose_encoder

# A rendered body is reused for at most this long (process_* series move continuously).
MAX_AGE_SECONDS = 1.0
# Prometheus asks for gzip; level 1 shrinks an exposition about tenfold for little CPU.
GZIP_LEVEL = 1

Render = Callable[[str | None], tuple[bytes, str]]


class RenderFailed(RuntimeError):
    """The render this request joined failed."""


@dataclass(slots=True)
class _Entry:
    version: int
    started: float
    done: anyio.Event
    result: tuple[bytes, str] | None = None


class ExpositionCache:
    """Single-flight, short-lived cache of ``render``'s output per content type and encoding.

    ``render`` turns an Accept header into (body, content type) and runs in a worker thread,
    as does gzip (zlib releases the GIL). ``renders`` counts the renders started.
    """

    def __init__(
        self,
        render: Render,
        version: Callable[[], int],
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.render = render
        self.version = version
        self.max_age = max_age
        self.clock = clock
        self.renders = 0
        self.entries: dict[tuple[str, bool], _Entry] = {}

    async def get(self, accept: str | None, compress: bool) -> tuple[bytes, str]:
        """Return the body for ``accept`` (gzip-compressed if ``compress``) and its type."""
        key = (choose_encoder(accept or "")[1], compress)
        entry = self.entries.get(key)
        if entry is not None and self._reusable(entry):
            await entry.done.wait()
        else:
            entry = _Entry(self.version(), self.clock(), anyio.Event())
            self.entries[key] = entry
            await self._fill(key, entry, accept, compress)
        if entry.result is None:
            raise RenderFailed("rendering the exposition failed")
        return entry.result

    def _reusable(self, entry: _Entry) -> bool:
        """A render in flight is joined; a finished one is reused while current and young."""
        if self.clock() - entry.started >= self.max_age:
            return False
        if not entry.done.is_set():
            return True
        return entry.result is not None and entry.version == self.version()

    async def _fill(
        self, key: tuple[str, bool], entry: _Entry, accept: str | None, compress: bool
    ) -> None:
        def work() -> None:
            body, content_type = self.render(accept)
            if compress:
                body = gzip.compress(body, GZIP_LEVEL)
            entry.result = (body, content_type)  # set here: a cancelled caller still fills it

        self.renders += 1
        try:
            await anyio.to_thread.run_sync(work)
        finally:
            entry.done.set()
            asyncio.get_running_loop().call_later(self.max_age, self._expire, key, entry)

    def _expire(self, key: tuple[str, bool], entry: _Entry) -> None:
        if self.entries.get(key) is entry:
            del self.entries[key]
