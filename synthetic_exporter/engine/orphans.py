"""The orphan sweep: find test data by its marker, and delete what no run holds any more.

A suite declares, per kind, a listing of the synthetic data on the server::

    @suite.orphans("customer")
    async def synthetic_customers(j: JanitorContext) -> list[Orphan]:
        r = await j.http.get("/customers")
        return [Orphan(c["id"], c["created_at"], marker=c["name"]) for c in r.json()["items"]]

Each listed :class:`Orphan` is then, in this order:

1. matched with a pending intent by the key in its ``marker`` (the run that intended it is over
   without an id: killed, timed out): the intent is resolved and the janitor deletes it;
2. left alone if the ledger holds its id or a live run of this process holds its key;
3. deleted through the kind's janitor once older than the grace period (data of a ledger that
   was lost, or of a check that never tracked it), recorded in the ledger first so that a failed
   deletion is retried with back-off.

Listings that fail (raise anything, or run past the clean-up timeout) are logged and retried
with back-off. Intents whose key no listing finds are forgotten after ``intent_max_age``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from loguru import logger

from synthetic_exporter.authoring.janitor import Orphan
from synthetic_exporter.core.results import CleanupFailure
from synthetic_exporter.engine.invoke import call, call_bounded
from synthetic_exporter.engine.ledger import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_MAX_SECONDS,
    Entry,
    Ledger,
)

if TYPE_CHECKING:
    from synthetic_exporter.authoring.janitor import JanitorContext
    from synthetic_exporter.authoring.suite import Suite

# Until the settings carry them (SYNTHETIC_ORPHAN_GRACE, SYNTHETIC_INTENT_MAX_AGE).
ORPHAN_GRACE_SECONDS = 3600.0
"""Unknown synthetic data younger than this may belong to a live run of another agent."""
INTENT_MAX_AGE_SECONDS = 86400.0
"""An intent whose key no successful listing has found for this long is forgotten."""

Kind = tuple[str, str]  # (suite, kind)
Failure = CleanupFailure | None


def _no_op(suite: str, kind: str) -> None:
    """Count nothing."""


SweepEvent = Callable[[str, str], None]


@dataclass(slots=True, kw_only=True)
class SweepEvents:
    """Countable outcomes of clean-ups, as ``callback(suite, kind)``; no-ops by default."""

    cleanup_failed: SweepEvent = _no_op
    """A janitor raised or timed out (the entry is retried with back-off)."""
    listing_failed: SweepEvent = _no_op
    """An orphan listing raised or timed out (retried with back-off)."""
    intent_found: SweepEvent = _no_op
    """An unresolved intent's resource was found by its key and handed to its janitor."""
    orphan_found: SweepEvent = _no_op
    """Unknown synthetic data older than the grace period was handed to its janitor."""
    intent_forgotten: SweepEvent = _no_op
    """An intent whose key was never found was dropped after ``intent_max_age``."""


class Cleaner(Protocol):
    """What the orphan sweep needs from the :class:`~synthetic_exporter.engine.sweeper.Sweeper`."""

    events: SweepEvents

    async def clean(self, entries: list[Entry]) -> list[CleanupFailure]:
        """Run the janitors of resolved entries."""

    def context(self, suite: str) -> JanitorContext:
        """Return the context a suite's janitors and listings receive."""


@dataclass(slots=True)
class _Backoff:
    failures: int = 0
    next_at: float = 0.0


@dataclass(slots=True, kw_only=True)
class OrphanSweep:
    """Lists each kind's synthetic data and matches it against the ledger."""

    ledger: Ledger
    suites: Mapping[str, Suite]
    cleaner: Cleaner
    limit: float
    redact: Callable[[str], str] = lambda s: s
    grace: float = ORPHAN_GRACE_SECONDS
    intent_max_age: float = INTENT_MAX_AGE_SECONDS
    _backoff: dict[Kind, _Backoff] = field(default_factory=dict)

    async def match_intents(self, intents: list[Entry]) -> list[CleanupFailure]:
        """Look up the unresolved intents of a finished run; release the ones not found yet.

        A listing that is backing off after a failure is not called: the sweep looks later.
        """
        failures: list[CleanupFailure] = []
        for suite, kind in dict.fromkeys((e.suite, e.kind) for e in intents):
            group = [e for e in intents if (e.suite, e.kind) == (suite, kind)]
            orphans, error = None, None
            if not self._backing_off(suite, kind):
                orphans, error = await self._list(suite, kind)
            if error is not None:
                failures.append(error)
            found = await self._resolve(kind, group, orphans or [], failures)
            for entry in group:
                if entry.id not in found:
                    self.ledger.release(entry.id)
                    logger.bind(suite=suite, kind=kind, key=entry.key).info(
                        f"{kind} {entry.key} not found yet; the sweep will look again"
                    )
        return failures

    async def sweep(self, now: float | None = None) -> list[CleanupFailure]:
        """List every kind that has a listing and is due; delete what no run holds."""
        failures: list[CleanupFailure] = []
        listed: set[Kind] = set()
        for suite in self.suites.values():
            for kind in suite.orphan_finders:
                if self._backing_off(suite.name, kind):
                    continue
                orphans, error = await self._list(suite.name, kind)
                if error is not None:
                    failures.append(error)
                    continue
                listed.add((suite.name, kind))
                failures += await self._sweep_listing(suite.name, kind, orphans or [], now)
        self._forget_old_intents(listed, now)
        return failures

    async def _sweep_listing(
        self, suite: str, kind: str, orphans: list[Orphan], now: float | None
    ) -> list[CleanupFailure]:
        failures: list[CleanupFailure] = []
        await self._resolve(kind, self.ledger.unresolved(), orphans, failures)
        ids, live_keys = self.ledger.holdings()
        when = time.time() if now is None else now
        for orphan in orphans:
            if orphan.id in ids or orphan.keys & live_keys:
                continue
            if when - orphan.created_at < self.grace:
                continue
            data = {"found_by": "orphan sweep", "marker": orphan.marker[:200]}
            entry_id = self.ledger.add(suite, kind, orphan.id, data, "orphan-sweep")
            ids.add(orphan.id)
            age = round(when - orphan.created_at)
            logger.bind(suite=suite, kind=kind, age_seconds=age).warning(
                f"deleting untracked synthetic {kind} {orphan.id} ({orphan.marker[:80]!r})"
            )
            self.cleaner.events.orphan_found(suite, kind)
            failures += await self._clean_entry(entry_id)
        return failures

    async def _resolve(
        self,
        kind: str,
        intents: Iterable[Entry],
        orphans: list[Orphan],
        failures: list[CleanupFailure],
    ) -> set[int]:
        """Resolve and clean every ``kind`` intent whose key a listed orphan carries.

        Returns the entry ids of the intents found.
        """
        by_key = {key: orphan for orphan in orphans for key in orphan.keys}
        if not by_key:
            return set()
        ids, _ = self.ledger.holdings()
        found: set[int] = set()
        for entry in intents:
            orphan = by_key.get(entry.key)
            if orphan is None or entry.kind != kind:
                continue
            found.add(entry.id)
            if orphan.id in ids:  # tracked by another entry already
                self.ledger.remove(entry.id)
                continue
            ids.add(orphan.id)
            self.ledger.found(entry.id, orphan.id)
            logger.bind(suite=entry.suite, kind=entry.kind, key=entry.key).warning(
                f"found {entry.kind} {orphan.id} of an unfinished create by its key {entry.key}"
            )
            self.cleaner.events.intent_found(entry.suite, entry.kind)
            failures += await self._clean_entry(entry.id)
        return found

    async def _clean_entry(self, entry_id: int) -> list[CleanupFailure]:
        return await self.cleaner.clean(self.ledger.by_id(entry_id))

    def _forget_old_intents(self, listed: set[Kind], now: float | None) -> None:
        when = time.time() if now is None else now
        for entry in self.ledger.unresolved():
            suite = self.suites.get(entry.suite)
            can_list = suite is not None and entry.kind in suite.orphan_finders
            if can_list and (entry.suite, entry.kind) not in listed:
                continue  # its listing failed or is backing off: no evidence either way
            if when - entry.created_at < self.intent_max_age:
                continue
            self.ledger.remove(entry.id)
            self.cleaner.events.intent_forgotten(entry.suite, entry.kind)
            logger.bind(suite=entry.suite, kind=entry.kind, key=entry.key).warning(
                f"forgetting {entry.kind} intent {entry.key}: not found in"
                f" {when - entry.created_at:.0f}s (the create probably failed)"
            )

    def _backing_off(self, suite: str, kind: str) -> bool:
        state = self._backoff.get((suite, kind))
        return state is not None and state.next_at > time.time()

    async def _list(self, suite: str, kind: str) -> tuple[list[Orphan] | None, Failure]:
        """Call a kind's listing, bounded; back off after a failure."""
        owner = self.suites.get(suite)
        finder = owner.orphan_finders.get(kind) if owner is not None else None
        if finder is None:
            return None, None
        found: list[Orphan] = []

        async def listing() -> None:
            items = await call(finder, self.cleaner.context(suite))
            for item in items:
                if not isinstance(item, Orphan):
                    raise TypeError(f"an orphan listing must return Orphan objects, got {item!r}")
                found.append(item)

        error = await call_bounded(listing, limit=self.limit)
        key = (suite, kind)
        if error is None:
            self._backoff.pop(key, None)
            return found, None
        error = self.redact(error)
        state = self._backoff.setdefault(key, _Backoff())
        state.failures += 1
        delay = min(BACKOFF_BASE_SECONDS * 2 ** (state.failures - 1), BACKOFF_MAX_SECONDS)
        state.next_at = time.time() + delay
        self.cleaner.events.listing_failed(suite, kind)
        logger.bind(suite=suite, kind=kind, attempts=state.failures).warning(
            f"orphan listing of {kind} failed (next try in {delay:g}s): {error}"
        )
        return None, CleanupFailure(f"orphans {kind}", error)
