"""The transport's keep-alive pool: idle connections per origin, taken and returned in O(1).

An idle connection is taken from a per-origin deque in O(1), the most recently used first
(httpcore's pool assignment is quadratic in waiting requests, encode/httpx#3215); dead or
expired ones are closed when met. :func:`run_connections` gives ``per_run`` transports
(``fresh_connections`` targets) a pool per suite run, through :data:`RUN_POOLS`.
"""

from __future__ import annotations

import contextvars
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from synthetic_exporter.http.connection import Connection, Origin


class Pool:
    """Idle keep-alive connections per origin; the most recently used is taken first."""

    def __init__(self, max_per_origin: int, expiry: float) -> None:
        self.max_per_origin = max_per_origin
        self.expiry = expiry
        self.idle: dict[Origin, deque[Connection]] = {}
        self.closed = False

    def take(self, origin: Origin) -> Connection | None:
        """Return a usable idle connection to ``origin`` (closing dead ones), if any."""
        connections = self.idle.get(origin)
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            if connection.usable(now, self.expiry):
                return connection
            connection.close()
        return None

    def put(self, connection: Connection) -> None:
        """Keep ``connection`` for reuse, or close it if the pool is closed or full."""
        connections = self.idle.setdefault(connection.origin, deque())
        if self.closed or len(connections) >= self.max_per_origin:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        connections.append(connection)

    def size(self) -> int:
        """Return how many idle connections the pool holds."""
        return sum(len(connections) for connections in self.idle.values())

    def close(self) -> None:
        """Close every idle connection; connections in use close when put back."""
        self.closed = True
        for connections in self.idle.values():
            while connections:
                connections.pop().close()


# The pools of the suite run in progress, by transport (``per_run`` transports only).
RUN_POOLS: contextvars.ContextVar[dict[int, Pool] | None] = contextvars.ContextVar(
    "synthetic_run_pools", default=None
)


@contextmanager
def run_connections() -> Iterator[None]:
    """Give every ``per_run`` transport a pool of its own until the block ends, then close them.

    This is how ``fresh_connections`` targets make each suite run pay (and measure) its own
    DNS, TCP and TLS without building a new client per run.
    """
    pools: dict[int, Pool] = {}
    token = RUN_POOLS.set(pools)
    try:
        yield
    finally:
        RUN_POOLS.reset(token)
        for pool in pools.values():
            pool.close()
