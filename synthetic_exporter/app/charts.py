"""Small inline charts for the status pages: the geometry only, drawn by the templates as SVG."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 120.0
HEIGHT = 24.0
PAD = 2.0


@dataclass(frozen=True, slots=True)
class Sparkline:
    """A duration sparkline: SVG polyline ``points`` in a WIDTH x HEIGHT box, and its labels."""

    points: str
    last: str
    peak: str
    title: str


def milliseconds(seconds: float) -> str:
    """Return a duration as ``850 ms`` or ``1.25 s``."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def sparkline(durations: Sequence[float]) -> Sparkline | None:
    """Return the sparkline of durations (oldest first), scaled from 0 to the peak."""
    if not durations:
        return None
    peak = max(durations) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(durations) - 1, 1)
    points = " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - (d / peak) * (HEIGHT - 2 * PAD):.1f}"
        for i, d in enumerate(durations)
    )
    if len(durations) == 1:  # one run: a flat line across
        points += f" {WIDTH - PAD:.1f},{points.split(',')[1]}"
    return Sparkline(
        points=points,
        last=milliseconds(durations[-1]),
        peak=milliseconds(max(durations)),
        title=f"duration of the last {len(durations)} runs: last {milliseconds(durations[-1])},"
        f" peak {milliseconds(max(durations))}",
    )
