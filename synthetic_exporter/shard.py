"""Split suites between replicas: ``SYNTHETIC_SHARD=i/N`` runs shard ``i`` (0-based) of ``N``.

A suite and every suite it is connected to by dependencies form one group; a group lands on
one shard, chosen by a stable hash of its name, so that every suite runs on exactly one
replica and a dependency is always evaluated where its dependents run.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import TypeVar

from synthetic_exporter.graph import dependency_groups
from synthetic_exporter.suite import Suite

SHARD_PATTERN = re.compile(r"^(\d+)/(\d+)$")
S = TypeVar("S", bound=Suite)


def parse_shard(text: str) -> tuple[int, int]:
    """Return ``(index, total)`` from ``"i/N"`` with ``0 <= i < N``."""
    match = SHARD_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"invalid shard {text!r}: use i/N, e.g. 0/3 (0-based)")
    index, total = int(match[1]), int(match[2])
    if total < 1 or index >= total:
        raise ValueError(f"invalid shard {text!r}: need 0 <= i < N")
    return index, total


def shard_of(group: str, total: int) -> int:
    """Return the shard a dependency group belongs to."""
    return zlib.crc32(group.encode()) % total


def suites_for_shard(suites: Mapping[str, S], index: int, total: int) -> dict[str, S]:
    """Return the suites that shard ``index`` of ``total`` runs, in load order."""
    groups = dependency_groups(suites)
    return {name: s for name, s in suites.items() if shard_of(groups[name], total) == index}
