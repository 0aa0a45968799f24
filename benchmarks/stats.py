"""Percentiles and the small records measurements return."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank ``q`` percentile (0-100) of ``values`` (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Dist:
    """p50, p99, max and count of some samples (same unit as the samples)."""

    p50: float
    p99: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Dist:
        samples = list(values)
        top = max(samples) if samples else math.nan
        return cls(percentile(samples, 50), percentile(samples, 99), top, len(samples))

    def scaled(self, factor: float) -> Dist:
        """Return the distribution with every figure multiplied (e.g. seconds to ms)."""
        return Dist(self.p50 * factor, self.p99 * factor, self.max * factor, self.n)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dist:
        return cls(float(data["p50"]), float(data["p99"]), float(data["max"]), int(data["n"]))


def ratio(a: float, b: float) -> float:
    """Return ``a / b`` (NaN when ``b`` is 0 or either is NaN)."""
    if b == 0 or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b
