"""Split suites between replicas: ``SYNTHETIC_SHARD=i/N`` runs shard ``i`` (0-based) of ``N``.

A suite and every suite it is connected to by dependencies form one group; a group lands on
one shard, chosen by a stable hash of its name, so that every suite runs on exactly one
replica and a dependency is always evaluated where its dependents run.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import TypeVar

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.engine.graph import dependency_groups

S = TypeVar("S", bound=Suite)


def shard_of(group: str, total: int) -> int:
    """Return the shard a dependency group belongs to."""
    return zlib.crc32(group.encode()) % total


def suites_for_shard(suites: Mapping[str, S], index: int, total: int) -> dict[str, S]:
    """Return the suites that shard ``index`` of ``total`` runs, in load order."""
    groups = dependency_groups(suites)
    return {name: s for name, s in suites.items() if shard_of(groups[name], total) == index}
