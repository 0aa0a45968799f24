"""Schedule lag: how late the agent's ``Scheduler`` wakes for due suites.

S one-test no-op suites are scheduled (lag from the ``on_lag`` callback), idle and while 100
HTTP checks are kept in flight in the same process, with the listeners ``serve`` attaches.
With an interval longer than the window every suite wakes once per round, at its first-run
offset (spread over 2 s by the scheduler; the same offsets recur every interval, so the first
cycle is the steady state). What-if scenarios drop the per-result pending-cleanup refresh,
force ``gc.freeze()`` on or off, or load with checks that make no request, to show what the lag
comes from. Also: what each of ``serve``'s listeners costs per suite result as the number of
loaded suites grows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.agent_worker import AGENT_POOLED, ENGINE_ONLY
from benchmarks.lab import Lab
from benchmarks.stats import Dist

LOAD_INFLIGHT = 100
LOAD_WARMUP = 0.5


@dataclass(frozen=True, slots=True)
class Scenario:
    """``load``: client kind of the checks kept in flight (None: idle), ``load_delay_ms`` the
    target's delay for them. What-ifs: ``pending_refresh=False`` drops ``PendingCleanups``;
    ``gc_freeze`` True/False forces ``gc.freeze()`` after loading on/off (None: as ``serve``)."""

    scheduled: int
    load: str | None
    load_delay_ms: int = 0
    pending_refresh: bool = True
    gc_freeze: bool | None = None

    @property
    def label(self) -> str:
        if self.load is None:
            load = "idle"
        else:
            load = f"{LOAD_INFLIGHT} in flight, {self.load}, {self.load_delay_ms} ms server"
        changes = [
            *([] if self.pending_refresh else ["no PendingCleanups"]),
            *(
                []
                if self.gc_freeze is None
                else [f"gc.freeze() {'on' if self.gc_freeze else 'off'}"]
            ),
        ]
        return f"{self.scheduled:,} scheduled, {load}" + (
            f"; what-if: {', '.join(changes)}" if changes else ""
        )


def scenarios(small: int, large: int) -> list[Scenario]:
    """Return the scenarios: the agent as ``serve`` wires it, then the what-ifs."""
    lean = {"pending_refresh": False, "gc_freeze": True}
    return [
        Scenario(small, None),
        Scenario(small, AGENT_POOLED, 100),
        Scenario(small, AGENT_POOLED),
        Scenario(large, None),
        Scenario(large, AGENT_POOLED, 100),
        Scenario(small, None, pending_refresh=False, gc_freeze=False),
        Scenario(small, None, **lean),
        Scenario(small, AGENT_POOLED, **lean),
        Scenario(small, ENGINE_ONLY, **lean),
        Scenario(large, None, **lean),
    ]


@dataclass
class Cell:
    lag_ms: Dist
    load_checks_per_second: float
    setup_seconds: float
    gc_full_collections: int
    gc_max_pause_ms: float


@dataclass
class Lag:
    cells: dict[Scenario, Cell] = field(default_factory=dict)
    # suites loaded -> listener class -> seconds per suite result
    listener_cost: dict[int, dict[str, Dist]] = field(default_factory=dict)


async def measure_lag(lab: Lab) -> Lag:
    """Measure every scenario, round by round (order rotated each round)."""
    plan = lab.plan
    result = Lag()
    samples: dict[Scenario, list[float]] = {}
    answers: dict[Scenario, list[dict[str, Any]]] = {}
    todo = scenarios(min(plan.lag_scheduled), max(plan.lag_scheduled))
    for round_ in range(plan.lag_rounds):
        shift = round_ % len(todo)
        for scenario in todo[shift:] + todo[:shift]:
            answer = await lab.agent.call(
                "lag",
                limit=plan.lag_window + LOAD_WARMUP + 300,
                scheduled=scenario.scheduled,
                interval=plan.lag_interval,
                window=plan.lag_window,
                load_kind=scenario.load,
                load_delay_ms=scenario.load_delay_ms,
                inflight=LOAD_INFLIGHT,
                warmup=LOAD_WARMUP,
                pending_refresh=scenario.pending_refresh,
                gc_freeze=scenario.gc_freeze,
            )
            samples.setdefault(scenario, []).extend(float(x) for x in answer.pop("lags"))
            answers.setdefault(scenario, []).append(answer)
    for scenario in todo:
        runs = answers[scenario]
        result.cells[scenario] = Cell(
            Dist.of(samples[scenario]).scaled(1000),
            sum(float(a["load_checks_per_second"]) for a in runs) / len(runs),
            max(float(a["setup_seconds"]) for a in runs),
            sum(int(a["gc_full_collections"]) for a in runs),
            max(float(a["gc_max_pause"]) for a in runs) * 1000,
        )
    loaded = [10, 100] if plan.quick else [100, 1000, 10000]
    cost: dict[str, Any] = await lab.agent.call(
        "listener_cost", limit=600, loaded=loaded, reps=20 if plan.quick else 200
    )
    for count, by_listener in cost.items():
        result.listener_cost[int(count)] = {k: Dist.from_json(v) for k, v in by_listener.items()}
    return result
