"""The agent's memory budget: accepted figures, and the check that a run stays within them.

Memory is a non-regression budget (issue 16): pydantic-settings, starlette/uvicorn and pytest's
assertion rewriting stay, so the agent sits at about 1.3x the bare-Python baseline (about
60 MiB with 10,000 series). The figures below are what the benchmark measured when the budget
was set (docs/performance.md, "Memory budget"), rounded up; a run fails the goal when any
figure exceeds its budget by more than :data:`TOLERANCE`.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
KIB = 1024
TOLERANCE = 0.10


@dataclass(frozen=True, slots=True)
class Budget:
    """Accepted RSS: idle (no suite loaded, after scrapes), per suite and per 1,000 series."""

    idle_mib: float
    per_suite_kib: float
    per_1000_series_mib: float


BUDGET = Budget(idle_mib=60.0, per_suite_kib=64.0, per_1000_series_mib=0.64)


@dataclass(frozen=True, slots=True)
class Line:
    """One budgeted figure of a run."""

    name: str
    measured: float
    budget: float
    unit: str

    @property
    def ratio(self) -> float:
        return self.measured / self.budget

    @property
    def within(self) -> bool:
        """Within the budget plus the tolerance."""
        return self.measured <= self.budget * (1 + TOLERANCE)


def check(
    idle_bytes: float, per_suite_bytes: float, per_series_bytes: float, budget: Budget = BUDGET
) -> list[Line]:
    """Compare a run's figures (bytes) with ``budget``."""
    return [
        Line("idle RSS", idle_bytes / MIB, budget.idle_mib, "MiB"),
        Line("per suite", per_suite_bytes / KIB, budget.per_suite_kib, "KiB"),
        Line("per 1,000 series", per_series_bytes * 1000 / MIB, budget.per_1000_series_mib, "MiB"),
    ]
