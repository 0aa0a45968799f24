"""One render of the exposition for every scraper asking at about the same time.

Fifty scrapers arriving together used to render (and gzip) fifty copies of the same bytes. The
cache keeps one rendered body per format and encoding: a request joins a render in flight, or
reuses a finished one while nothing it shows has changed (the ``version`` callable) and it is
younger than ``max_age``; a render that started after the request came is as good as one of
its own, changed or not (requests may wait their turn, see
:mod:`synthetic_exporter.app.http_limits`). The age bound exists because some series change
all the time without a version (process CPU and memory, the schedule-lag histogram): at most
``max_age`` old, they are as fresh as any scraper can tell. A body is dropped ``max_age`` after
it was rendered, so that nothing large stays resident between scrapes.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import anyio
import anyio.to_thread
from prometheus_client.exposition import choose_encoder

# A rendered body is reused for at most this long (process_* series move continuously).
MAX_AGE_SECONDS = 1.0
# Prometheus asks for gzip; level 1 shrinks an exposition about tenfold for little CPU.
GZIP_LEVEL = 1

# An Accept header -> the exposition's pieces (joined, they are the body) and its content type.
Render = Callable[[str | None], tuple[list[bytes], str]]


class RenderFailed(RuntimeError):
    """The render this request joined failed."""


@dataclass(slots=True, kw_only=True)
class _Entry:
    version: int
    started: float
    done: anyio.Event
    result: tuple[bytes, str] | None = None


class ExpositionCache:
    """Single-flight, short-lived cache of ``render``'s output per content type and encoding.

    ``render`` turns an Accept header into (the body's pieces, content type) and runs in a
    worker thread, as does gzip (zlib releases the GIL). ``renders`` counts the renders started.
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

    async def get(
        self, accept: str | None, compress: bool, received_at: float | None = None
    ) -> tuple[bytes, str]:
        """Return the body for ``accept`` (gzip-compressed if ``compress``) and its type.

        ``received_at`` (on ``clock``) is when the request came: a render that started since
        is as fresh as one of its own, even if something changed meanwhile.
        """
        key = (choose_encoder(accept or "")[1], compress)
        entry = self.entries.get(key)
        if entry is not None and self._reusable(entry, received_at):
            await entry.done.wait()
        else:
            entry = _Entry(version=self.version(), started=self.clock(), done=anyio.Event())
            self.entries[key] = entry
            await self._fill(key, entry, accept, compress)
        if entry.result is None:
            raise RenderFailed("rendering the exposition failed")
        return entry.result

    def _reusable(self, entry: _Entry, received_at: float | None) -> bool:
        """Tell whether ``entry`` serves a request received at ``received_at``.

        A render in flight is joined; a finished one is reused while young and current
        (nothing changed, or it started after the request came).
        """
        if self.clock() - entry.started >= self.max_age:
            return False
        if not entry.done.is_set():
            return True
        if entry.result is None:
            return False
        started_since = received_at is not None and entry.started >= received_at
        return started_since or entry.version == self.version()

    async def _fill(
        self, key: tuple[str, bool], entry: _Entry, accept: str | None, compress: bool
    ) -> None:
        def work() -> None:
            parts, content_type = self.render(accept)
            body = gzip_parts(parts) if compress else b"".join(parts)
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


def gzip_parts(parts: Iterable[bytes]) -> bytes:
    """Return ``parts``, joined, as gzip: piece by piece, never holding the joined original."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    return b"".join([*(compressor.compress(part) for part in parts), compressor.flush()])
