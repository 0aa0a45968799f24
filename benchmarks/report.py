"""The Markdown report: machine, goals (measured, met?, what would meet them), every figure.

Everything here is computed from one run's :class:`Results`; ratios compare figures of that
same run.
"""

from __future__ import annotations

import math
import os
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks import blackbox, budget
from benchmarks.accuracy import (
    AGENT_FRESH_HTTPS,
    BLACKBOX,
    BLACKBOX_HTTPS,
    Accuracy,
    baseline_of,
)
from benchmarks.agent_api import serve_backend_options, serve_freezes_gc
from benchmarks.agent_worker import (
    AGENT_FRESH,
    AGENT_POOLED,
    ENGINE_ONLY,
    HTTPCORE,
    HTTPCORE_POOLED,
    REFERENCE,
)
from benchmarks.browser import FULL_SECONDS, BrowserBench
from benchmarks.httpx2 import HTTPX2_POOLED
from benchmarks.lab import Plan
from benchmarks.lag import LOAD_INFLIGHT, Lag, Scenario
from benchmarks.memory import Memory, idle_agent, slope
from benchmarks.scrape import (
    CACHED,
    INTERFERENCE_DELAY_MS,
    INTERFERENCE_INFLIGHT,
    NOT_SCRAPED,
    SCRAPED,
    SWITCH,
    Scrape,
)
from benchmarks.series import FIVE, ONE, ONE_HTTPS, OWN_FAMILIES, Series
from benchmarks.stats import Dist, ratio
from benchmarks.throughput import SHARDED, Throughput
from benchmarks.throughput import Cell as ThroughputCell

BEGIN = "<!-- BEGIN GENERATED: python -m benchmarks; do not edit by hand -->"
END = "<!-- END GENERATED -->"
MIB = 1024 * 1024
STEADY_CHANGED = 5  # percent of suites with a new result before each render (agent_worker)
ISSUE_BASELINE_MIB = 39.0
SECTIONS = (
    "## Goals",
    "## Machine",
    "## Accuracy",
    "## Throughput",
    "## Schedule lag",
    "## Scrape",
    "## Series",
    "## Memory",
    "## Browser checks",
    "## Reproduce",
)


@dataclass
class Results:
    """One run's figures."""

    plan: Plan
    command: str
    accuracy: Accuracy
    throughput: Throughput
    lag: Lag
    scrape: Scrape
    memory: Memory
    phase_seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0
    code: str = ""
    httpx2: str = "skipped"
    series: Series = field(default_factory=Series)
    browser: BrowserBench = field(default_factory=BrowserBench)


def ms(value: float) -> str:
    """Format milliseconds."""
    if math.isnan(value):
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def times(value: float) -> str:
    """Format a ratio."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def per_s(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f}"


def mib(value: float) -> str:
    return f"{value / MIB:.1f}"


def yes(met: bool) -> str:
    return "**yes**" if met else "**no**"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def machine(code: str, httpx2: str = "skipped") -> list[tuple[str, str]]:
    """Return what the figures were measured on."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        cpu = match.group(1).strip() if match else cpu
    packages = ("httpx", "httpcore", "httptools", "uvloop", "prometheus_client", "anyio")
    versions = {p: _version(p) for p in packages}
    loop = "uvloop" if serve_backend_options().get("use_uvloop") else "asyncio"
    return [
        ("CPU", cpu),
        ("cores", str(os.cpu_count())),
        ("kernel", platform.release()),
        ("Python", platform.python_version()),
        ("httpx / httpcore", f"{versions['httpx']} / {versions['httpcore']}"),
        ("httpx2 / httpcore2 (`whatif-httpx2*` rows)", httpx2),
        ("httptools (the agent's HTTP/1.1 parser)", versions["httptools"]),
        ("agent's event loop", f"{loop} (uvloop {versions['uvloop']})"),
        ("prometheus_client", versions["prometheus_client"]),
        ("anyio", versions["anyio"]),
        ("blackbox_exporter", f"{blackbox.version()} (Debian prometheus-blackbox-exporter)"),
        ("network", "127.0.0.1 only: target, blackbox_exporter and agent on the same machine"),
        ("agent code measured", code),
    ]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class Goal:
    goal: str
    measured: str
    met: bool
    change: str


def _cpu_ms(cell: ThroughputCell) -> float:
    """CPU milliseconds per check of a throughput cell."""
    return ratio(1000.0, cell.per_cpu_second)


def goals(r: Results) -> list[Goal]:
    """Evaluate the issue's goals on this run's figures."""
    return [
        *_accuracy_goals(r),
        *_throughput_goals(r),
        *_https_goals(r),
        _lag_goal(r),
        *_scrape_goals(r),
        _series_goal(r),
        _memory_goal(r),
    ]


def _listed(values: list[float], fmt: Callable[[float], str]) -> str:
    """Format one figure per accuracy delay: ``a / b / c``."""
    return " / ".join(fmt(v) for v in values)


def _accuracy_goals(r: Results) -> list[Goal]:
    acc = r.accuracy.cells
    delays = r.plan.accuracy_delays
    at = f" at {'/'.join(str(d) for d in delays)} ms delay"
    out = []
    for q, limit in (("p50", 1.0), ("p99", 1.5)):

        def added(system: str, field: str = "measured", q: str = q) -> list[float]:
            """Return ``system``'s added latency (ms) at quantile ``q``, one per delay."""
            cells = [getattr(acc[(d, system)], field) for d in delays]
            return [getattr(c, q) if c is not None else math.nan for c in cells]

        def vs_blackbox(system: str, field: str = "measured") -> list[float]:
            return [ratio(x, b) for x, b in zip(added(system, field), added(BLACKBOX), strict=True)]

        fresh = vs_blackbox(AGENT_FRESH)
        phases = vs_blackbox(AGENT_FRESH, "phases")
        met = all(x <= limit for x in fresh)
        evidence = (
            "Request phases alone: "
            + _listed(phases, times)
            + "; shared pool, the agent's transport (`agent-pooled`) "
            + _listed(vs_blackbox(AGENT_POOLED), times)
            + " vs httpx's default transport (`whatif-httpcore-pooled`) "
            + _listed(vs_blackbox(HTTPCORE_POOLED), times)
            + "; a bare asyncio GET: "
            + _listed(vs_blackbox(REFERENCE), times)
            + "."
        )
        if met:
            change = f"Met. {evidence}"
        else:
            test_ms = added(AGENT_FRESH)
            over = [t - limit * b for t, b in zip(test_ms, added(BLACKBOX), strict=True)]
            outside = [t - p for t, p in zip(test_ms, added(AGENT_FRESH, "phases"), strict=True)]
            timing = (
                "timing the check's HTTP latency from the transport (its phases) would meet it"
                if all(x <= limit for x in phases)
                else "the phases alone do not meet it either"
            )
            change = (
                f"{evidence} The test is {_listed(over, ms)} ms ({q}) over the limit; httpx's "
                f"client layer inside the test's clock (test minus phases) takes "
                f"{_listed(outside, ms)} ms: {timing}"
            )
        out.append(
            Goal(
                f"added latency {q} <= {limit:.1f}x blackbox's, fresh connection",
                "test duration " + _listed(fresh, times) + at,
                met,
                change,
            )
        )
    return out


def _throughput_goals(r: Results) -> list[Goal]:
    tp = r.throughput.cells
    top = max(r.plan.inflight)
    bb = tp[(top, BLACKBOX)]
    pooled, fresh, sharded = tp[(top, AGENT_POOLED)], tp[(top, AGENT_FRESH)], tp[(top, SHARDED)]
    httpcore, engine = tp[(top, HTTPCORE)], tp[(top, ENGINE_ONLY)]
    costs = r.lag.listener_cost
    count = min(costs, key=lambda n: abs(n - top)) if costs else top
    metrics_cost = costs.get(count, {}).get("Metrics")
    pending = costs.get(count, {}).get("PendingCleanups")
    pending_ms = pending.p50 * 1000 if pending is not None else math.nan
    bookkeeping = (
        f"of which Metrics {ms(metrics_cost.p50 * 1000)} ms per result"
        if metrics_cost is not None
        else "engine and listeners"
    )
    if pending_ms > 0.05:
        bookkeeping += f" and the pending-cleanup refresh {ms(pending_ms)} ms"

    def rate(cell: ThroughputCell) -> float:
        return ratio(cell.per_second, bb.per_second)

    def per_cpu(cell: ThroughputCell) -> float:
        return ratio(cell.per_cpu_second, bb.per_cpu_second)

    one = (
        f"One process reaches {times(rate(pooled))} ({per_s(pooled.per_second)} checks/s on "
        f"{pooled.cpu_share:.2f} cores; one event loop runs on one core at most)"
    )
    shards = (
        f"two processes (`SYNTHETIC_SHARD=0/2` and `1/2`, one per core): "
        f"{per_s(sharded.per_second)} checks/s on {sharded.cpu_share:.2f} cores, blackbox "
        f"{per_s(bb.per_second)} probes/s on {bb.cpu_share:.2f} cores"
    )
    if rate(sharded) >= 1.0:
        rate_change = f"Met with {shards}. {one}"
    else:
        rate_change = f"Not met even with {shards}. {one}. Less CPU per check: next row"
    evidence = (
        f"CPU per check at {top} in flight: `agent-pooled` {ms(_cpu_ms(pooled))} ms, on "
        f"httpx's default transport (`whatif-httpcore`) {ms(_cpu_ms(httpcore))} ms, no "
        f"request at all (`whatif-engine-only`) {ms(_cpu_ms(engine))} ms ({bookkeeping}), "
        f"blackbox {ms(_cpu_ms(bb))} ms."
    )
    if per_cpu(pooled) >= 1.0:
        cpu_change = f"Met. {evidence}"
    else:
        cpu_change = (
            f"{evidence} The HTTP request adds {ms(_cpu_ms(pooled) - _cpu_ms(engine))} ms per "
            f"check to the engine and listeners, which alone take "
            f"{times(ratio(_cpu_ms(engine), _cpu_ms(bb)))} blackbox's CPU per check"
        )
    return [
        Goal(
            f"throughput at {top} in flight: checks/s >= 1.0x blackbox's probes/s",
            f"{times(rate(sharded))} (2 shards: two processes), one process "
            f"{times(rate(pooled))} (shared pool, the default), "
            f"{times(rate(fresh))} (fresh connections)",
            rate(sharded) >= 1.0,
            rate_change,
        ),
        Goal(
            f"throughput at {top} in flight: checks per CPU-second >= 1.0x blackbox's",
            f"{times(per_cpu(pooled))} (one process, shared pool), "
            f"{times(per_cpu(fresh))} (fresh connections), {times(per_cpu(sharded))} (2 shards)",
            per_cpu(pooled) >= 1.0,
            cpu_change,
        ),
    ]


def _lag_goal(r: Results) -> Goal:
    small, large = min(r.plan.lag_scheduled), max(r.plan.lag_scheduled)
    cells = r.lag.cells
    lean = {"pending_refresh": False, "gc_freeze": True}
    as_is = cells[Scenario(small, None)]
    saturated = cells[Scenario(small, AGENT_POOLED)]
    in_flight = cells[Scenario(small, AGENT_POOLED, 100)]
    plain = cells[Scenario(small, None, pending_refresh=False, gc_freeze=False)]
    lean_idle = cells[Scenario(small, None, **lean)]
    engine = cells[Scenario(small, ENGINE_ONLY, **lean)]
    burst = cells[Scenario(large, None, **lean)]
    costs = r.lag.listener_cost
    count = min(costs, key=lambda n: abs(n - small)) if costs else small
    pending = costs.get(count, {}).get("PendingCleanups")
    pending_ms = pending.p50 * 1000 if pending is not None else math.nan
    changes = []
    if pending_ms > 0.1:
        changes.append(
            "Set the pending-cleanup gauge of the finished suite only (full refresh on sweeps): "
            f"now {ms(pending_ms)} ms per result with {count:,} suites."
        )
    if as_is.gc_max_pause_ms > 10:
        changes.append(
            f"`gc.freeze()` after loading: full-GC pauses of {ms(as_is.gc_max_pause_ms)} ms."
        )
    met = in_flight.lag_ms.p99 <= 10.0
    changes.append(
        ("Met while the checks wait on their targets. " if met else "")
        + f"Idle p99 as wired {ms(as_is.lag_ms.p99)} ms; without PendingCleanups, GC unfrozen "
        f"{ms(plain.lag_ms.p99)} ms, frozen {ms(lean_idle.lag_ms.p99)} ms. When the "
        f"{LOAD_INFLIGHT} checks keep the CPU busy (0 ms server, "
        f"{per_s(saturated.load_checks_per_second)} checks/s) the loop is saturated and p99 is "
        f"{ms(saturated.lag_ms.p99)} ms; with suites that make no request at all, "
        f"{ms(engine.lag_ms.p99)} ms: one loop iteration then runs every ready check's next "
        "step, and a timer waits for it. A saturated agent needs fewer checks per process "
        f"(shards) or admission control. First runs spread over 2 s: {large:,} suites idle, "
        f"p99 {ms(burst.lag_ms.p99)} ms"
    )
    return Goal(
        f"schedule lag p99 <= 10 ms, {small:,} scheduled, {LOAD_INFLIGHT} checks in flight",
        f"{ms(in_flight.lag_ms.p99)} ms with {LOAD_INFLIGHT} checks in flight on a 100 ms "
        f"server ({per_s(in_flight.load_checks_per_second)} checks/s); "
        f"{ms(saturated.lag_ms.p99)} ms with the CPU saturated (0 ms server); idle "
        f"{ms(as_is.lag_ms.p99)} ms",
        met,
        " ".join(changes),
    )


def _scrape_goals(r: Results) -> list[Goal]:
    series = r.plan.scrape_series
    render = r.scrape.renders.get(series) or next(iter(r.scrape.renders.values()))
    render_ratio = ratio(render.agent_ms.p99, render.baseline_ms.p99)
    added = r.scrape.added_ms
    base, scraped = added[NOT_SCRAPED], added[SCRAPED]
    cached, switch = added[CACHED], added[SWITCH]
    d50, d99 = scraped.p50 - base.p50, scraped.p99 - base.p99
    scrape_met = abs(d50) <= 1.0 and d99 <= 1.0
    if render_ratio <= 0.1:
        render_change = (
            f"Met. A scrape after every suite changed (cold) takes {ms(render.cold_ms.p99)} ms "
            f"(p99); one suite's change and re-render {ms(r.scrape.one_suite_render_ms.p50)} ms"
        )
    else:
        render_change = (
            "Cache the exposition per suite: re-render a suite's block when its result "
            f"arrives ({ms(r.scrape.one_suite_render_ms.p50)} ms for one suite's "
            f"{r.scrape.one_suite_series} series) and serve the joined bytes "
            f"({ms(render.cached_join_ms)} ms here: "
            f"{times(ratio(render.cached_join_ms, render.baseline_ms.p99))})"
        )
    return [
        Goal(
            f"/metrics with {render.series:,} series: p99 <= 0.1x plain prometheus_client",
            f"{times(render_ratio)} ({ms(render.agent_ms.p99)} ms vs "
            f"{ms(render.baseline_ms.p99)} ms; {STEADY_CHANGED}% of suites changed per scrape)",
            render_ratio <= 0.1,
            render_change,
        ),
        Goal(
            "tests in flight within 1 ms of their true latency while /metrics is scraped",
            f"scraping moves added latency by {ms(d50)} ms (p50), {ms(d99)} ms (p99)",
            scrape_met,
            ("Met, scraped back to back (every 15 s or more in production). " if scrape_met else "")
            + "Serving pre-rendered bytes: "
            f"{ms(cached.p50 - base.p50)} / {ms(cached.p99 - base.p99)} ms (p50/p99 change); a "
            f"0.1 ms switch interval: {ms(switch.p50 - base.p50)} / {ms(switch.p99 - base.p99)} "
            "ms. What is left is the scrape's own work (HTTP, the agent's process metrics, "
            "re-rendering the changed suites, joining, gzip in a worker thread) competing with "
            "the checks for the core and the GIL"
            + ("" if scrape_met else "; next: serve /metrics from another process"),
        ),
    ]


def _memory_goal(r: Results) -> Goal:
    agent = next(a for a in r.memory.agents if "series" in a.label)
    base = r.memory.baseline.get("series", 0)
    mem_ratio = ratio(agent.rss_after_scrapes, base)
    lines = budget.check(idle_agent(r.memory).rss_after_scrapes, *slope(r.memory))
    met = all(line.within for line in lines)
    b = budget.BUDGET
    over = [line for line in lines if not line.within]
    context = (
        f"With {agent.series:,} series: {mib(agent.rss_after_scrapes)} MiB, {times(mem_ratio)} "
        f"of this run's baseline ({mib(base)} MiB) and "
        f"{times(agent.rss_after_scrapes / MIB / ISSUE_BASELINE_MIB)} of the issue's "
        f"{ISSUE_BASELINE_MIB:.0f} MiB (accepted: about 1.3x, budget in benchmarks/budget.py)"
    )
    if met:
        change = f"Met. {context}."
    else:
        exceeded = "; ".join(f"{line.name} {times(line.ratio)} of its budget" for line in over)
        change = f"Over budget: {exceeded}. {context}. " + _memory_excess(
            r, agent.rss_after_scrapes - base
        )
    return Goal(
        f"memory within budget +{budget.TOLERANCE:.0%}: idle {b.idle_mib:g} MiB, "
        f"{b.per_suite_kib:g} KiB per suite, {b.per_1000_series_mib:g} MiB per 1,000 series",
        "; ".join(
            f"{line.name} {line.measured:.2f} {line.unit} ({times(line.ratio)})" for line in lines
        ),
        met,
        change,
    )


def _https_goals(r: Results) -> list[Goal]:
    """HTTPS, a new TLS connection per check: latency and CPU per check against blackbox's."""
    acc = r.accuracy.cells
    delays = r.plan.accuracy_delays
    at = f" at {'/'.join(str(d) for d in delays)} ms delay"
    out = []
    for q, limit in (("p50", 1.0), ("p99", 1.5)):
        agent = [getattr(acc[(d, AGENT_FRESH_HTTPS)].measured, q) for d in delays]
        bb = [getattr(acc[(d, BLACKBOX_HTTPS)].measured, q) for d in delays]
        cells = [acc[(d, AGENT_FRESH_HTTPS)].phases for d in delays]
        phases = [getattr(c, q) if c is not None else math.nan for c in cells]
        vs = [ratio(a, b) for a, b in zip(agent, bb, strict=True)]
        evidence = (
            f"Agent {_listed(agent, ms)} ms vs blackbox {_listed(bb, ms)} ms added ({q}); the "
            f"agent's request phases alone (TLS handshake included) "
            f"{_listed([ratio(p, b) for p, b in zip(phases, bb, strict=True)], times)}"
        )
        met = all(x <= limit for x in vs)
        out.append(
            Goal(
                f"HTTPS, fresh connection: added latency {q} <= {limit:.1f}x blackbox's",
                "test duration " + _listed(vs, times) + at,
                met,
                ("Met. " if met else "") + evidence,
            )
        )
    tp = r.throughput.cells
    top = max(r.plan.inflight)
    agent_tls, bb_tls = tp[(top, AGENT_FRESH_HTTPS)], tp[(top, BLACKBOX_HTTPS)]
    agent_plain, bb_plain = tp[(top, AGENT_FRESH)], tp[(top, BLACKBOX)]
    per_cpu = ratio(agent_tls.per_cpu_second, bb_tls.per_cpu_second)
    by_inflight = [
        ratio(tp[(n, AGENT_FRESH_HTTPS)].per_cpu_second, tp[(n, BLACKBOX_HTTPS)].per_cpu_second)
        for n in r.plan.inflight
    ]
    every = ", ".join(
        f"{n} in flight {times(x)}" for n, x in zip(r.plan.inflight, by_inflight, strict=True)
    )
    evidence = (
        f"CPU per check with TLS at {top} in flight: agent {ms(_cpu_ms(agent_tls))} ms, blackbox "
        f"{ms(_cpu_ms(bb_tls))} ms; the handshake adds "
        f"{ms(_cpu_ms(agent_tls) - _cpu_ms(agent_plain))} ms to the agent's fresh-connection "
        f"check and {ms(_cpu_ms(bb_tls) - _cpu_ms(bb_plain))} ms to blackbox's probe. By "
        f"concurrency: {every}"
    )
    out.append(
        Goal(
            f"HTTPS, fresh connection, {top} in flight: checks per CPU-second >= 1.0x blackbox's",
            f"{times(per_cpu)} ({per_s(agent_tls.per_cpu_second)} vs "
            f"{per_s(bb_tls.per_cpu_second)} per CPU-second)",
            per_cpu >= 1.0,
            ("Met. " if per_cpu >= 1.0 else "") + evidence,
        )
    )
    return out


def _series_goal(r: Results) -> Goal:
    s = r.series
    one, five, one_tls = s.agent[ONE], s.agent[FIVE], s.agent[ONE_HTTPS]
    bb, bb_tls = s.blackbox[blackbox.HTTP], s.blackbox[blackbox.HTTPS]
    further = (five.series - one.series) / 4
    met = one.series <= bb.series and further <= 6
    largest = sorted(s.families.get(ONE, {}).items(), key=lambda kv: -kv[1])[:3]
    listed = ", ".join(f"`{name}` {count:g}" for name, count in largest)
    change = (
        f"Met. HTTPS: {one_tls.series:g} vs blackbox {bb_tls.series:g}."
        if met
        else f"Not met ({one.series - bb.series:+g} series per one-request check); the "
        f"reduction is a later change of issue 16. Largest families per check: {listed}. "
        f"HTTPS: one request {one_tls.series:g} series vs blackbox's probe {bb_tls.series:g}"
    )
    return Goal(
        "series for a one-request test <= 1.0x blackbox's probe; each further request <= +6",
        f"one request {one.series:g} series vs blackbox {bb.series:g} "
        f"({times(ratio(one.series, bb.series))}); five requests {five.series:g} "
        f"({further:+g} per further request)",
        met,
        change,
    )


def _memory_excess(r: Results, excess: float) -> str:
    """Say what the agent imports beyond the baseline's and which of it would cover ``excess``."""
    names, rss = list(r.memory.imports), list(r.memory.imports.values())
    costs = {names[i].removeprefix("+ "): rss[i] - rss[i - 1] for i in range(2, len(rss))}
    listed = "; ".join(f"{name}: {mib(cost)}" for name, cost in costs.items())
    # The agent's own modules are not a dependency to drop; the largest others first.
    droppable = sorted(
        ((cost, name) for name, cost in costs.items() if "own modules" not in name), reverse=True
    )
    picked: list[str] = []
    covered = 0.0
    for cost, name in droppable:
        if covered >= excess:
            break
        picked.append(name)
        covered += cost
    enough = (
        f"Leaving out {' and '.join(f'`{name}`' for name in picked)} ({mib(covered)} MiB) "
        "would cover it; each is a dependency chosen for the product"
        if covered >= excess
        else "Leaving all of them out would not cover it"
    )
    return (
        f"Over by {mib(excess)} MiB. What the agent imports beyond anyio, httpx and "
        f"prometheus_client costs {mib(sum(costs.values()))} MiB ({listed}). {enough}"
    )


def render_report(r: Results) -> str:
    """Return the whole generated Markdown."""
    lines: list[str] = [BEGIN, ""]
    mode = (
        "quick (harness check only: tiny counts, figures meaningless)" if r.plan.quick else "full"
    )
    lines += [
        f"Mode: {mode}. Took {r.total_seconds:.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in r.phase_seconds.items())
        + "). Ratios compare figures of this same run; lower latency, lag, render time and "
        "memory are better, higher throughput is better.",
        "",
        "## Goals",
        "",
    ]
    lines += table(
        ["goal", "measured", "met?", "what would meet it (evidence from this run)"],
        [[g.goal, g.measured, yes(g.met), g.change] for g in goals(r)],
    )
    lines += ["", "## Machine", ""]
    lines += table(["", ""], [[k, v] for k, v in machine(r.code, r.httpx2)])
    lines += _accuracy(r)
    lines += _throughput(r)
    lines += _lag(r)
    lines += _scrape(r)
    lines += _series(r)
    lines += _memory(r)
    lines += _browser(r)
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        "apt-get install -y prometheus-blackbox-exporter   # /usr/bin/prometheus-blackbox-exporter",
        r.command,
        "```",
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def _dist_cells(d: Dist | None) -> list[str]:
    if d is None or d.n == 0:
        return ["", "", ""]
    return [ms(d.p50), ms(d.p99), ms(d.max)]


def _accuracy(r: Results) -> list[str]:
    plan = r.plan
    lines = [
        "",
        "## Accuracy",
        "",
        "Added latency = what the system measured minus how long the target held the request "
        "(its own clock), one check at a time, systems interleaved in chunks of "
        f"{plan.accuracy_chunk}. Blackbox: `probe_duration_seconds` (fresh connection, always) "
        "and the sum of `probe_http_duration_seconds` phases. Agent: the test's "
        "`duration_seconds` and the sum of its request's `phases`, as recorded in "
        "`TestResult`. `agent-fresh` is a target with `fresh_connections=True` (a connection "
        "pool per suite run); `agent-pooled` the shared pool. `whatif-httpcore-pooled` is not "
        "the agent: its engine with one shared client on httpx's default transport "
        "(httpcore), what it measured before its own transport; `whatif-httpx2-pooled` the "
        f"same on httpx2/httpcore2 ({r.httpx2}). `reference-raw-asyncio` is a "
        "bare asyncio GET on a fresh connection (the floor for Python here). HTTPS: "
        "`blackbox-https` and `agent-fresh-https` against the target's TLS listener (same "
        "process and routes, a `trustme` CA and ECDSA P-256 certificate for 127.0.0.1 that "
        "both trust: blackbox's `tls_config.ca_file`, the agent's `ca_bundle`), a new TLS "
        "connection per check, the handshake inside the measured time and the phases; their "
        "ratios compare with `blackbox-https`. Milliseconds.",
        "",
    ]
    rows = []
    for (delay, system), cell in r.accuracy.cells.items():
        bb = r.accuracy.cells[(delay, baseline_of(system))].measured
        rows.append(
            [
                f"{delay} ms",
                system,
                *_dist_cells(cell.measured),
                *_dist_cells(cell.phases)[:2],
                times(ratio(cell.measured.p50, bb.p50)),
                times(ratio(cell.measured.p99, bb.p99)),
                f"{cell.measured.n}" + (f" ({cell.failed} failed)" if cell.failed else ""),
            ]
        )
    lines += table(
        [
            "delay",
            "system",
            "added p50",
            "added p99",
            "max",
            "phases p50",
            "phases p99",
            "p50 vs blackbox",
            "p99 vs blackbox",
            "n",
        ],
        rows,
    )
    overhead = []
    for (delay, system), cell in r.accuracy.cells.items():
        measured_systems = (
            AGENT_FRESH,
            AGENT_POOLED,
            HTTPCORE_POOLED,
            HTTPX2_POOLED,
            AGENT_FRESH_HTTPS,
        )
        if system in measured_systems and cell.phases is not None:
            overhead.append(f"{system} at {delay} ms: {ms(cell.measured.p50 - cell.phases.p50)} ms")
    lines += [
        "",
        "Test duration minus request phases (p50), i.e. time inside the test that no phase "
        "accounts for (httpx's client and transport work, the check's own code): "
        + "; ".join(overhead)
        + ".",
    ]
    return lines


def _throughput(r: Results) -> list[str]:
    plan = r.plan
    lines = [
        "",
        "## Throughput",
        "",
        f"Closed loops against `/delay/0`, {plan.throughput_rounds} round(s) of "
        f"{plan.throughput_seconds:g} s per cell after {plan.throughput_warmup:g} s warm-up, "
        "systems interleaved. Agent: one-test suites through `Coordinator.run_batch` with "
        "`serve`'s listeners. CPU from `/proc/<pid>/stat` (agent process; blackbox process; "
        "the harness driving blackbox's probes is not counted but shown). Target CPU shows the "
        "target is not the bottleneck; with 2 cores, blackbox + target + harness can fill the "
        "machine at high concurrency, so blackbox's figures there are a floor. At "
        f"{max(plan.inflight)} in flight only: `{SHARDED}` is two agent processes (what "
        "`SYNTHETIC_SHARD=0/2` and `1/2` run, one per core), each with half the checks in "
        "flight, commanded at once (checks and CPU summed, the window their mean); the what-if "
        "rows are not the agent: `whatif-httpcore` is its engine on httpx's default transport "
        "(what it measured before its own transport), `whatif-engine-only` suites that make "
        "no request at all; `whatif-httpx2` is `whatif-httpcore` on httpx2/httpcore2 and "
        "`whatif-httpx2-agent-transport` the agent's own transport under httpx2's client, in a "
        f"worker whose `import httpx` gives httpx2 ({r.httpx2}). HTTPS: `blackbox-https` "
        "and `agent-fresh-https` (a full TLS handshake per check) against the target's TLS "
        "listener, compared with `blackbox-https`.",
        "",
    ]
    rows = []
    for (inflight, system), cell in r.throughput.cells.items():
        bb = r.throughput.cells[(inflight, baseline_of(system))]
        rows.append(
            [
                str(inflight),
                system,
                per_s(cell.per_second),
                per_s(cell.per_cpu_second),
                f"{cell.cpu_share:.2f}",
                f"{cell.target_cpu_share:.2f}",
                f"{cell.harness_cpu_share:.2f}" if system == baseline_of(system) else "",
                times(ratio(cell.per_second, bb.per_second)),
                times(ratio(cell.per_cpu_second, bb.per_cpu_second)),
                str(cell.failed),
            ]
        )
    lines += table(
        [
            "in flight",
            "system",
            "checks/s",
            "checks per CPU-s",
            "CPU (cores)",
            "target CPU",
            "harness CPU",
            "/s vs blackbox",
            "per CPU-s vs blackbox",
            "failed",
        ],
        rows,
    )
    return lines


def _loop_name() -> str:
    if serve_backend_options().get("use_uvloop"):
        return "uvloop, whose timers count whole milliseconds"
    return "asyncio"


def _lag(r: Results) -> list[str]:
    plan = r.plan
    lines = [
        "",
        "## Schedule lag",
        "",
        "Wake-up lateness from the `Scheduler`'s `on_lag` callback, for one-test no-op suites "
        f"with a {plan.lag_interval:g} s interval (each wakes once per {plan.lag_window:g} s "
        f"window at its first-run offset, spread over 2 s), {plan.lag_rounds} round(s); series "
        "pre-created as in steady state, listeners as `serve` wires them (including "
        f"`gc.freeze()` after loading: {'yes' if serve_freezes_gc() else 'no'} in this "
        f"version), on the event loop `serve` runs on ({_loop_name()}). "
        f"Load: {LOAD_INFLIGHT} HTTP checks kept in flight in the same process (closed loops, "
        "started together), against a server answering after 100 ms (checks waiting on their "
        "targets) or at once (the checks saturate the CPU). What-ifs: without "
        "`PendingCleanups`, `gc.freeze()` forced on or off, and load suites that make no "
        "request. Milliseconds.",
        "",
    ]
    rows = []
    for scenario, cell in r.lag.cells.items():
        rows.append(
            [
                scenario.label,
                *_dist_cells(cell.lag_ms),
                str(cell.lag_ms.n),
                per_s(cell.load_checks_per_second) if scenario.load else "",
                str(cell.gc_full_collections),
                ms(cell.gc_max_pause_ms),
            ]
        )
    lines += table(
        [
            "scenario",
            "p50",
            "p99",
            "max",
            "wake-ups",
            "load checks/s",
            "full GCs",
            "longest GC pause",
        ],
        rows,
    )
    names = sorted({n for by in r.lag.listener_cost.values() for n in by})
    lines += [
        "",
        "Cost of each of `serve`'s listeners per suite result (p50, microseconds), by suites "
        "loaded:",
        "",
    ]
    lines += table(
        ["suites loaded", *names],
        [
            [f"{count:,}", *(f"{by[n].p50 * 1e6:,.0f}" if n in by else "" for n in names)]
            for count, by in sorted(r.lag.listener_cost.items())
        ],
    )
    return lines


def _scrape(r: Results) -> list[str]:
    s = r.scrape
    lines = [
        "",
        "## Scrape",
        "",
        "The agent's text exposition (what a scrape renders: `metrics.render` on the "
        "registry, or the cached `Metrics.render` where the agent has one) of series filled "
        "through `Metrics.suite_finished`, against a plain prometheus_client registry of the "
        "same series count (gauge, counter and histogram per label set), alternating in the "
        f"agent process. Before each agent render {STEADY_CHANGED}% of the suites got a new "
        "result (a 15 s scrape, 5 min checks); cold: all of them. OpenMetrics is the agent's "
        "in that format (p99 against text). Cached join: joining pre-rendered blocks "
        "(what-if). Milliseconds.",
        "",
    ]
    rows = []
    for render in s.renders.values():
        rows.append(
            [
                f"{render.series:,} ({render.baseline_series:,})",
                f"{render.bytes / 1024:,.0f} KiB",
                ms(render.agent_ms.p50),
                ms(render.agent_ms.p99),
                ms(render.cold_ms.p99),
                ms(render.baseline_ms.p50),
                ms(render.baseline_ms.p99),
                times(ratio(render.agent_ms.p99, render.baseline_ms.p99)),
                times(ratio(render.openmetrics_ms.p99, render.agent_ms.p99)),
                ms(render.cached_join_ms),
            ]
        )
    lines += table(
        [
            "series (baseline)",
            "size",
            "agent p50",
            "agent p99",
            "agent cold p99",
            "baseline p50",
            "baseline p99",
            "agent/baseline p99",
            "OpenMetrics/text p99",
            "cached join",
        ],
        rows,
    )
    base = s.added_ms[NOT_SCRAPED]
    lines += [
        "",
        f"One suite's block: {s.one_suite_series} series; a new result for it and a render "
        f"take {ms(s.one_suite_render_ms.p50)} ms (p50).",
        "",
        f"Interference: the agent's app serving {s.served_series:,} series "
        f"({s.scrape_bytes / 1024:,.0f} KiB) while {INTERFERENCE_INFLIGHT} checks "
        f"({INTERFERENCE_DELAY_MS} ms server delay) run in closed loops; rounds cycle through "
        "the modes below; scrapes ask for gzip, as Prometheus does (the size is uncompressed). "
        "Added latency of the checks (measured minus held) and the scrapes' "
        "own HTTP latency, ms. What-ifs: scraping pre-rendered bytes (a cached exposition; its "
        "per-suite re-render on each result is not included), and `sys.setswitchinterval` "
        "0.1 ms instead of the 0.5 ms `serve` sets (Python's default: 5 ms).",
        "",
    ]
    rows = []
    for mode, dist in s.added_ms.items():
        scraped = s.scrape_ms.get(mode)
        rows.append(
            [
                mode,
                *_dist_cells(dist),
                ms(dist.p50 - base.p50),
                ms(dist.p99 - base.p99),
                str(dist.n),
                str(scraped.n) if scraped else "",
                ms(scraped.p50) if scraped else "",
                ms(scraped.p99) if scraped else "",
            ]
        )
    lines += table(
        [
            "mode",
            "added p50",
            "added p99",
            "max",
            "p50 change",
            "p99 change",
            "checks",
            "scrapes",
            "scrape p50",
            "scrape p99",
        ],
        rows,
    )
    return lines


def _series(r: Results) -> list[str]:
    s = r.series
    own = ", ".join(f"`{f.decode()}*`" for f in OWN_FAMILIES)
    lines = [
        "",
        "## Series",
        "",
        "What one check adds to a scrape. Agent: real `serve` processes with 1 and "
        f"{1 + s.suites_added} generated suites of each kind (one test; its requests GET "
        "`/delay/0` of one target), the difference of their `/metrics` divided by the "
        f"{s.suites_added} suites added; excluded: the agent's own families ({own}), which do "
        "not grow with checks. Every check connects afresh (`FRESH_CONNECTIONS=true`), so it "
        "records every phase of a new connection, as a lone check's first run does at default "
        "settings. Blackbox: one `/probe` response, every sample. Bytes: text format, "
        "uncompressed and gzip (the agent's level, "
        f"{_gzip_level()}); in a scrape of many checks gzip shares repeated labels, so "
        "per-check gzip bytes are those of the difference.",
        "",
    ]
    rows = [
        [
            f"agent, {kind}",
            f"{f.series:g}",
            f"{f.bytes:,.0f}",
            f"{f.gzip_bytes:,.0f}",
            f"{s.alone[kind].series:g}" if kind in s.alone else "",
        ]
        for kind, f in s.agent.items()
    ]
    rows += [
        [
            f"blackbox, one probe (`{module}`)",
            f"{f.series:g}",
            f"{f.bytes:,.0f}",
            f"{f.gzip_bytes:,.0f}",
            f"{f.series:g}",
        ]
        for module, f in s.blackbox.items()
    ]
    lines += table(["per check", "series", "bytes", "gzip bytes", "series, alone"], rows)
    lines += [
        "",
        "Series, alone: the whole scrape of an agent with that one check (its own families "
        "excluded): the per-check series plus what is fixed per target (the phase histogram, "
        "16 series per phase observed, and the response counters), which does not grow with "
        "checks.",
    ]
    one = s.families.get(ONE, {})
    lines += ["", "The one-request check's series by family: "]
    lines[-1] += ", ".join(f"`{name}` {count:g}" for name, count in one.items()) + "."
    return lines


def _gzip_level() -> str:
    from synthetic_exporter.exporter.exposition_cache import GZIP_LEVEL

    return f"level {GZIP_LEVEL}"


def _memory(r: Results) -> list[str]:
    m = r.memory
    lines = [
        "",
        "## Memory",
        "",
        "Resident set size (`/proc/<pid>/status`). Agent: a fresh `synthetic-exporter serve` "
        "per row with generated one-test HTTP suites, once every suite passed, before and after "
        "three scrapes. Baseline: Python with anyio, httpx and prometheus_client, one client "
        "(one request) and a plain registry, rendered once (the issue's 39 MiB reference). MiB.",
        "",
    ]
    base = m.baseline.get("series", 0)
    rows = [
        [
            "baseline: Python + anyio, httpx, prometheus_client, 1 client, series",
            f"{r.plan.scrape_series:,}",
            "",
            mib(base),
            "1.00x",
        ]
    ]
    for a in m.agents:
        rows.append(
            [
                f"agent, {a.label} ({a.suites:,} suites, healthy after {a.ready_seconds:.1f} s)",
                f"{a.series:,}",
                mib(a.rss_before_scrape),
                mib(a.rss_after_scrapes),
                times(ratio(a.rss_after_scrapes, base)),
            ]
        )
    rows.append(
        [
            "blackbox_exporter idle",
            "",
            "",
            mib(m.blackbox_idle),
            times(ratio(m.blackbox_idle, base)),
        ]
    )
    rows.append(
        [
            "blackbox_exporter after the throughput load",
            "",
            "",
            mib(m.blackbox_after_load),
            times(ratio(m.blackbox_after_load, base)),
        ]
    )
    lines += table(["process", "series", "RSS before scrapes", "RSS", "vs baseline"], rows)
    lines += [
        "",
        "Budget (benchmarks/budget.py; a figure more than "
        f"{budget.TOLERANCE:.0%} over its budget fails the memory goal). Idle: the agent "
        "with no suite, after scrapes; per 1,000 series: the growth from the agent with the "
        "most suites to the same suites with every detailed metric family on "
        "(`SYNTHETIC_METRICS_*=true`: more series, nothing else changed); per suite: the "
        "growth between the agent rows with the fewest and the most suites at default "
        "settings, less its series' share (one-test suites with one HTTP request).",
        "",
    ]
    lines += table(
        ["figure", "this run", "budget", "this run / budget", "within?"],
        [
            [
                line.name,
                f"{line.measured:.2f} {line.unit}",
                f"{line.budget:g} {line.unit}",
                times(line.ratio),
                yes(line.within),
            ]
            for line in budget.check(idle_agent(m).rss_after_scrapes, *slope(m))
        ],
    )
    lines += ["", "Where the agent's memory goes, import by import (RSS after each step, MiB):", ""]
    lines += table(["step", "RSS"], [[k, mib(v)] for k, v in m.imports.items()])
    lines += ["", "The baseline process, step by step (MiB): "]
    lines[-1] += ", ".join(f"{k} {mib(v)}" for k, v in m.baseline.items()) + "."
    return lines


def _browser(r: Results) -> list[str]:
    b = r.browser
    lines = [
        "",
        "## Browser checks",
        "",
        "One-page browser checks (`t.page()`: a fresh context, the demo web app's storefront "
        "through its CloudFront-like edge, the page, its style, a script and four images, then "
        "its heading expected) run by the real engine in a closed loop, after one warm-up run "
        f"that starts Chromium ({FULL_SECONDS:g} s per row in a full run). CPU: the agent "
        "process and Chromium's process tree (with the renderers that exited), from `/proc`; "
        "memory: their proportional set size summed (shared pages counted once), idle after "
        "the warm-up and at its peak during the loop. Per core: checks one fully used core "
        "runs per minute.",
        "",
    ]
    if b.skipped:
        return [*lines, f"Skipped: {b.skipped}."]
    rows = [
        [
            str(c.concurrency),
            str(c.checks),
            str(c.failed),
            f"{c.checks / c.seconds:.2f}",
            f"{c.cpu_ms_per_check:.0f}",
            f"{c.cores:.2f}",
            f"{c.per_core_minute:.0f}",
            mib(c.idle_pss_bytes),
            mib(c.peak_pss_bytes),
            str(c.peak_processes),
        ]
        for c in b.cells
    ]
    lines += table(
        [
            "pages at once",
            "checks",
            "not passed",
            "checks/s",
            "CPU ms per check",
            "cores busy",
            "checks per core-minute",
            "idle MiB",
            "peak MiB",
            "peak processes",
        ],
        rows,
    )
    return lines


def write_report(path: Path, generated: str) -> None:
    """Write ``generated`` into ``path`` between the markers, keeping what is around them."""
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            path.write_text(head + generated.rstrip("\n") + tail)
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Performance\n\n" + generated)
