"""Janitors and orphan listings: what check authors write to delete their test data.

A janitor is declared in a check file and receives a :class:`JanitorContext` and the
:class:`Resource`::

    @suite.janitor("customer")
    async def delete_customer(j: JanitorContext, r: Resource) -> None:
        resp = await j.http.delete(f"/customers/{r.id}")
        assert resp.status_code in (204, 404), resp.text

A janitor must treat "already gone" as success: it may run after a crash for a resource
whose deletion had already started.

Unresolved intents (``t.intend`` without its ``t.track``) and untracked synthetic data are
found by the kind's orphan listing, which returns :class:`Orphan` items; the engine's sweeper
(:mod:`synthetic_exporter.engine.sweeper`) calls both.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from loguru import logger

if TYPE_CHECKING:
    from synthetic_exporter.core.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """A tracked test resource, as given to its janitor."""

    kind: str
    id: str
    data: dict[str, Any]
    suite: str
    attempts: int


class JanitorContext:
    """What a janitor (or orphan listing) receives: the target clients and a logger."""

    __slots__ = ("_clients", "_redact", "_settings", "_suite")

    def __init__(
        self,
        suite: str,
        *,
        settings: Settings,
        clients: Mapping[str, httpx.AsyncClient],
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self._suite = suite
        self._settings = settings
        self._clients = clients
        self._redact = redact

    def __repr__(self) -> str:
        return f"<JanitorContext {self._suite}>"

    @property
    def suite(self) -> str:
        """Return the name of the suite whose data this janitor deletes."""
        return self._suite

    @property
    def targets(self) -> frozenset[str]:
        """Return the names of the configured targets."""
        return frozenset(self._settings.targets)

    def client(self, target: str) -> httpx.AsyncClient:
        """Return the HTTP client of a configured target."""
        try:
            return self._clients[target]
        except KeyError:
            raise LookupError(f"no target named {target!r}") from None

    @property
    def http(self) -> httpx.AsyncClient:
        """Return the client of the target named ``default``."""
        return self.client("default")

    def log(self, message: object) -> None:
        """Log a line about this clean-up."""
        logger.bind(suite=self._suite).info(self._redact(str(message)))


def janitor_settings(j: JanitorContext) -> Settings:
    """Return the agent's settings behind a janitor context (for the agent's own helpers)."""
    return j._settings


KEY_PATTERN = re.compile(r"synthetic-[0-9a-z]+-[0-9]+(?![0-9])")
_sequence = itertools.count(1)


def new_key(run_id: str) -> str:
    """Return a fresh marker key, ``synthetic-<run id>-<n>``, unique across runs and processes."""
    run = re.sub(r"[^0-9a-z]", "", run_id.lower())[:16] or "run"
    return f"synthetic-{run}-{next(_sequence)}"


def _timestamp(value: datetime | str | float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise TypeError(f"created_at must be a datetime, ISO-8601 text or epoch seconds: {value!r}")


@dataclass(frozen=True, slots=True, init=False)
class Orphan:
    """A piece of synthetic test data an orphan listing found.

    ``created_at`` is a datetime (naive means UTC), an ISO-8601 string or epoch seconds;
    ``marker`` is any text the resource carries that contains the key of ``t.intend`` (a name,
    an e-mail address, a tag), or ``""``.
    """

    id: str
    created_at: float
    marker: str

    def __init__(self, id: object, created_at: datetime | str | float, marker: str = "") -> None:
        object.__setattr__(self, "id", str(id))
        object.__setattr__(self, "created_at", _timestamp(created_at))
        object.__setattr__(self, "marker", str(marker))

    @property
    def keys(self) -> set[str]:
        """Return the intent keys found in the marker."""
        return set(KEY_PATTERN.findall(self.marker))
