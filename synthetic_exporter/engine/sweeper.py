"""The sweeper: deletes tracked test resources through their suites' janitors.

It also runs the orphan sweep (:mod:`synthetic_exporter.engine.orphans`).

Janitors (:mod:`synthetic_exporter.authoring.janitor`) must treat "already gone" as success: the
sweeper may call one after a crash for a resource whose deletion had already started.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from loguru import logger

from synthetic_exporter.authoring.janitor import JanitorContext, Resource
from synthetic_exporter.core.results import CleanupFailure
from synthetic_exporter.engine.invoke import call_bounded
from synthetic_exporter.engine.ledger import Entry, Ledger
from synthetic_exporter.engine.orphans import (
    INTENT_MAX_AGE_SECONDS,
    ORPHAN_GRACE_SECONDS,
    OrphanSweep,
    SweepEvents,
)

if TYPE_CHECKING:
    from synthetic_exporter.authoring.suite import Suite
    from synthetic_exporter.core.settings import Settings


@dataclass(slots=True, kw_only=True)
class Sweeper:
    """Deletes ledger entries' resources through their suites' janitors, and sweeps for orphans.

    ``events`` receives countable outcomes (give it a :class:`SweepEvents` with callbacks).
    """

    ledger: Ledger
    suites: Mapping[str, Suite]
    settings: Settings
    clients: Mapping[str, httpx.AsyncClient]
    redact: Callable[[str], str] = lambda s: s
    orphan_grace: float = ORPHAN_GRACE_SECONDS
    intent_max_age: float = INTENT_MAX_AGE_SECONDS
    events: SweepEvents = field(default_factory=SweepEvents)
    orphans: OrphanSweep = field(init=False)

    def __post_init__(self) -> None:
        self.orphans = OrphanSweep(
            ledger=self.ledger,
            suites=self.suites,
            cleaner=self,
            limit=self.settings.cleanup_timeout,
            redact=self.redact,
            grace=self.orphan_grace,
            intent_max_age=self.intent_max_age,
        )

    async def clean(self, entries: list[Entry]) -> list[CleanupFailure]:
        """Run the janitor of every resolved entry and look up the unresolved intents.

        Cleaned entries are forgotten, failed ones backed off; intents not found yet are left
        to the sweep.
        """
        failures: list[CleanupFailure] = []
        for entry in entries:
            if entry.unresolved:
                continue
            error = await self._clean_one(entry)
            if error is None:
                self.ledger.remove(entry.id)
                continue
            error = self.redact(error)
            self.ledger.mark_failed(entry.id, error)
            name = f"janitor {entry.kind} {entry.resource_id}"
            failures.append(CleanupFailure(name, error))
            self.events.cleanup_failed(entry.suite, entry.kind)
            logger.bind(suite=entry.suite, kind=entry.kind, attempts=entry.attempts + 1).warning(
                f"clean-up of {entry.kind} {entry.resource_id} failed: {error}"
            )
        intents = [entry for entry in entries if entry.unresolved]
        if intents:
            failures += await self.orphans.match_intents(intents)
        return failures

    async def sweep(self) -> list[CleanupFailure]:
        """Retry every pending entry that is due, then run the orphan listings."""
        failures = await self.clean(self.ledger.due())
        return failures + await self.orphans.sweep()

    def context(self, suite: str) -> JanitorContext:
        """Return what a suite's janitors and orphan listings receive."""
        return JanitorContext(
            suite, settings=self.settings, clients=self.clients, redact=self.redact
        )

    async def _clean_one(self, entry: Entry) -> str | None:
        suite = self.suites.get(entry.suite)
        janitor = suite.janitors.get(entry.kind) if suite else None
        if janitor is None:
            return f"no janitor for kind {entry.kind!r} in suite {entry.suite!r}"
        resource = Resource(
            kind=entry.kind,
            id=entry.resource_id,
            data=entry.data,
            suite=entry.suite,
            attempts=entry.attempts,
        )
        limit = self.settings.cleanup_timeout
        return await call_bounded(janitor, self.context(entry.suite), resource, limit=limit)
