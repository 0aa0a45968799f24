"""The agent under test, driven in-process: ``python -m benchmarks.agent_worker --target URL``.

It opens the agent's engine (``synthetic_exporter.engine.wiring.open_engine``: instrumented shared
clients, ledger, sweeper), wires the listeners ``serve`` wires, and runs suites through
``Coordinator.run_batch`` and the ``Scheduler``, reading what the results record
(``TestResult.duration_seconds``, ``requests[].phases``). It is its own process so that its CPU
and memory are its own. Commands come as JSON lines on stdin; each answer is one
``RESULT <json>`` line on stdout. Client kinds:

- ``agent-pooled``: the target's shared client (what every check uses by default);
- ``agent-fresh``: a target with ``fresh_connections=True`` (the shared client, whose
  transport keeps a connection pool per suite run);
- ``whatif-httpcore`` / ``whatif-httpcore-pooled``: the agent's engine with one shared client
  on httpx's default transport (httpcore), instrumented as ``build_client`` does: what the agent
  measured before its own transport (not a setting of the agent);
- ``whatif-engine-only``: suites whose test makes no request: what the engine and the
  listeners cost per check, the ceiling whatever the HTTP client;
- ``reference-raw-asyncio``: no engine, no httpx: one timed GET on a fresh raw-asyncio
  connection, the floor for Python on this machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import httpx
from loguru import logger
from prometheus_client import disable_created_metrics, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks import rawhttp
from benchmarks.agent_api import (
    agent_state,
    pin_mmap_threshold_as_serve,
    renderer,
    serve_backend_options,
    serve_freezes_gc,
    serve_gc_threshold,
    serve_switch_interval,
)
from benchmarks.baseline import baseline_registry
from benchmarks.procs import cpu_seconds, rss_bytes
from benchmarks.stats import Dist
from benchmarks.suites import (
    AgentListeners,
    ClientFor,
    Path,
    agent_listeners,
    count_series,
    fill_metrics,
    http_suite,
    noop_suite,
    synthetic_result,
)
from synthetic_exporter.app.routes import create_app
from synthetic_exporter.app.web import bind_socket, config_for, run_server
from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.results import Outcome, TestResult
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.runner import Engine
from synthetic_exporter.engine.scheduler import Scheduler
from synthetic_exporter.engine.wiring import open_engine
from synthetic_exporter.http.clients import MARKER_HEADER, USER_AGENT
from synthetic_exporter.http.instrumentation import InstrumentedTransport

AGENT_POOLED = "agent-pooled"
AGENT_FRESH = "agent-fresh"
HTTPCORE = "whatif-httpcore"
HTTPCORE_POOLED = "whatif-httpcore-pooled"
REFERENCE = "reference-raw-asyncio"
ENGINE_ONLY = "whatif-engine-only"
STEADY_CHANGED_PERCENT = 5
OPENMETRICS = "application/openmetrics-text"
STOP_GRACE_SECONDS = 30.0
# (generation, seconds) of every garbage collection, for the lag measurement.
GC_PAUSES: list[tuple[int, float]] = []
_gc_started = [0.0]


def _gc_callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    elif len(GC_PAUSES) < 100_000:
        GC_PAUSES.append((int(info["generation"]), time.perf_counter() - _gc_started[0]))


READY = "agent worker ready pid "


@dataclass(slots=True)
class Loop:
    """A closed loop of one check run after another, until ``until``."""

    name: str
    path: Path
    samples: list[dict[str, Any]] = field(default_factory=list)
    done: int = 0
    failed: int = 0


@dataclass
class Worker:
    """Runs the measurements' agent side."""

    engine: Engine
    fresh_engine: Engine
    target: str
    group: anyio.abc.TaskGroup
    httpcore: httpx.AsyncClient = field(init=False)
    accuracy_setups: dict[str, tuple[Coordinator, str, Path]] = field(default_factory=dict)
    served: AgentListeners | None = None
    served_suites: dict[str, Suite] = field(default_factory=dict)
    served_paths: dict[str, Path] = field(default_factory=dict)
    server_scope: anyio.CancelScope | None = None

    def __post_init__(self) -> None:
        self.httpcore = httpcore_client(self.engine, "default")

    async def aclose(self) -> None:
        await self.httpcore.aclose()

    # Clients

    def engine_for(self, kind: str) -> Engine:
        """Return the engine whose ``default`` target has ``fresh_connections`` for agent-fresh.

        The setting is the target's, so agent-fresh gets an engine (and a target) of its own.
        """
        return self.fresh_engine if kind == AGENT_FRESH else self.engine

    def client_for(self, kind: str) -> ClientFor:
        """Return how a check of ``kind`` gets its client."""
        if kind in (AGENT_POOLED, AGENT_FRESH):  # agent-fresh: on the engine of fresh ones
            return lambda t: t.client("default")
        if kind in (HTTPCORE, HTTPCORE_POOLED):
            return lambda t: self.httpcore
        raise ValueError(f"unknown client kind {kind!r}")

    def loops(self, kind: str, prefix: str, count: int) -> tuple[dict[str, Suite], list[Loop]]:
        """Return ``count`` one-test HTTP suites of ``kind`` and a loop for each."""
        suites: dict[str, Suite] = {}
        loops = []
        for i in range(count):
            path = Path()
            name = f"{prefix}{i:04d}"
            if kind == ENGINE_ONLY:
                suites[name] = noop_suite(name, 3600.0)
            else:
                suites[name] = http_suite(name, self.client_for(kind), path)
            loops.append(Loop(name, path))
        return suites, loops

    # Commands

    async def accuracy(self, kind: str, delay_ms: int, n: int, prefix: str) -> dict[str, Any]:
        """Run ``n`` checks one after another; return what each measured, by request id."""
        samples: list[dict[str, Any]] = []
        if kind == REFERENCE:
            host, port, _ = rawhttp.split_url(self.target)
            for j in range(n):
                key = f"{prefix}{j}"
                connection = rawhttp.Connection(host, port)
                start = time.monotonic()
                response = await connection.get(f"/delay/{delay_ms}/{key}", {"Connection": "close"})
                elapsed = time.monotonic() - start
                await connection.close()
                samples.append({"id": key, "test": elapsed, "ok": response.status == 200})
            return {"samples": samples}
        if kind not in self.accuracy_setups:
            path = Path()
            name = f"acc-{kind}"
            suites = {name: http_suite(name, self.client_for(kind), path)}
            engine = self.engine_for(kind)
            listeners = agent_listeners(engine, suites)
            self.accuracy_setups[kind] = (
                Coordinator(engine=engine, suites=suites, listener=listeners.fanout, concurrency=1),
                name,
                path,
            )
        coordinator, name, path = self.accuracy_setups[kind]
        for j in range(n):
            key = f"{prefix}{j}"
            path.value = f"/delay/{delay_ms}/{key}"
            (result,) = await coordinator.run_batch([name])
            samples.append(sample(key, result.tests[0]))
        return {"samples": samples}

    async def run_loops(
        self, coordinator: Coordinator, loops: list[Loop], until: float, delay_ms: int | None
    ) -> None:
        """Run every loop until ``until`` (checks started before it finish)."""

        async def one(loop: Loop) -> None:
            j = 0
            while anyio.current_time() < until:
                if delay_ms is not None:
                    key = f"{loop.name}-{j}"
                    loop.path.value = f"/delay/{delay_ms}/{key}"
                (result,) = await coordinator.run_batch([loop.name])
                loop.done += 1
                test = result.tests[0]
                loop.failed += test.outcome is not Outcome.PASSED
                if delay_ms is not None:
                    loop.samples.append(sample(key, test))
                j += 1

        with anyio.move_on_after(until - anyio.current_time() + STOP_GRACE_SECONDS):
            async with anyio.create_task_group() as group:
                for loop in loops:
                    group.start_soon(one, loop)

    async def throughput(
        self, kind: str, inflight: int, seconds: float, warmup: float
    ) -> dict[str, Any]:
        """Keep ``inflight`` checks running; count checks and CPU over the measured window."""
        suites, loops = self.loops(kind, f"tp{inflight}-", inflight)
        engine = self.engine_for(kind)
        listeners = agent_listeners(engine, suites)
        coordinator = Coordinator(
            engine=engine, suites=suites, listener=listeners.fanout, concurrency=inflight
        )
        start = anyio.current_time()
        window: dict[str, float] = {}

        async def watch() -> None:
            await anyio.sleep(warmup)
            window.update(t0=time.monotonic(), c0=cpu_seconds(os.getpid()))
            window["n0"] = sum(loop.done for loop in loops)
            await anyio.sleep(seconds)
            window.update(t1=time.monotonic(), c1=cpu_seconds(os.getpid()))
            window["n1"] = sum(loop.done for loop in loops)

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            await self.run_loops(coordinator, loops, start + warmup + seconds, None)
        return {
            "checks": window["n1"] - window["n0"],
            "seconds": window["t1"] - window["t0"],
            "cpu_seconds": window["c1"] - window["c0"],
            "failed": sum(loop.failed for loop in loops),
        }

    async def lag(
        self,
        scheduled: int,
        interval: float,
        window: float,
        load_kind: str | None,
        load_delay_ms: int,
        inflight: int,
        warmup: float,
        pending_refresh: bool,
        gc_freeze: bool | None,
    ) -> dict[str, Any]:
        """Schedule ``scheduled`` no-op suites; record wake-up lateness, optionally under load.

        What-ifs: ``pending_refresh=False`` drops ``PendingCleanups`` from the listeners;
        ``gc_freeze`` calls ``gc.freeze()`` once the suites and listeners exist (``None``: as
        ``serve`` does).
        """
        if gc_freeze is None:
            gc_freeze = serve_freezes_gc()
        setup = time.monotonic()
        suites = {f"sched{i:05d}": noop_suite(f"sched{i:05d}", interval) for i in range(scheduled)}
        listeners = agent_listeners(self.engine, suites, pending_refresh=pending_refresh)
        setup_seconds = time.monotonic() - setup
        now = time.time()
        for name in suites:  # steady state: every series exists, as after the first cycle
            listeners.metrics.suite_finished(synthetic_result(name, now, "noop", http=False))
        coordinator = Coordinator(
            engine=self.engine, suites=suites, listener=listeners.fanout, concurrency=100
        )
        lags: list[float] = []
        scheduler = Scheduler(
            coordinator=coordinator, intervals={n: interval for n in suites}, on_lag=lags.append
        )
        load: list[Loop] = []
        if load_kind is not None:
            load_suites, load = self.loops(load_kind, f"load{scheduled}-", inflight)
            for loop in load:
                loop.path.value = f"/delay/{load_delay_ms}"
            load_listeners = agent_listeners(
                self.engine, load_suites, pending_refresh=pending_refresh
            )
            load_coordinator = Coordinator(
                engine=self.engine,
                suites=load_suites,
                listener=load_listeners.fanout,
                concurrency=inflight,
            )
        if gc_freeze:
            gc.collect()
            gc.freeze()
        try:
            async with anyio.create_task_group() as group:
                if load_kind is not None:
                    until = anyio.current_time() + warmup + window
                    group.start_soon(self.run_loops, load_coordinator, load, until, None)
                    await anyio.sleep(warmup)
                done0 = sum(loop.done for loop in load)
                started = time.monotonic()
                GC_PAUSES.clear()
                await group.start(scheduler.run)
                await anyio.sleep(window)
                elapsed = time.monotonic() - started
                done1 = sum(loop.done for loop in load)
                pauses = list(GC_PAUSES)
                group.cancel_scope.cancel()
        finally:
            if gc_freeze:
                gc.unfreeze()
        full = [seconds for generation, seconds in pauses if generation == 2]
        return {
            "lags": [round(lag, 6) for lag in lags],
            "setup_seconds": setup_seconds,
            "load_checks_per_second": (done1 - done0) / elapsed,
            "gc_full_collections": len(full),
            "gc_max_pause": max((seconds for _, seconds in pauses), default=0.0),
        }

    def render_timings(self, sizes: list[int], reps: list[int]) -> dict[str, Any]:
        """Time the agent's exposition against a plain prometheus_client registry, alternating.

        Before each "steady" render, 5% of the suites have a new result (a 15 s scrape of
        suites on a 5 min interval); before each "cold" render, all of them have.
        """
        out: dict[str, Any] = {}
        now = time.time()
        for size, count in zip(sizes, reps, strict=True):
            agent = agent_listeners(self.engine, {})
            series, names = fill_metrics(agent.metrics, agent.registry, size)
            render = renderer(agent.metrics, agent.registry)
            baseline = baseline_registry(series)
            baseline_series = count_series(baseline)
            changed = max(len(names) * STEADY_CHANGED_PERCENT // 100, 1)
            times: dict[str, list[float]] = {k: [] for k in ("steady", "cold", "om", "base")}
            body, _ = render(None)
            render(OPENMETRICS)
            for i in range(count):
                if i % 2 == 0:
                    times["base"].append(timed_once(generate_latest, baseline))
                first = (i * changed) % len(names)
                for name in (names + names)[first : first + changed]:
                    agent.metrics.suite_finished(synthetic_result(name, now))
                times["steady"].append(timed_once(render, None))
                times["om"].append(timed_once(render, OPENMETRICS))
                for name in names:
                    agent.metrics.suite_finished(synthetic_result(name, now))
                times["cold"].append(timed_once(render, None))
                render(OPENMETRICS)  # untimed: the next steady OpenMetrics render starts warm
                if i % 2 == 1:
                    times["base"].append(timed_once(generate_latest, baseline))
            body, _ = render(None)
            out[str(size)] = {
                "series": series,
                "baseline_series": baseline_series,
                "bytes": len(body),
                "agent": Dist.of(times["steady"]).to_json(),
                "cold": Dist.of(times["cold"]).to_json(),
                "baseline": Dist.of(times["base"]).to_json(),
                "openmetrics": Dist.of(times["om"]).to_json(),
                "cached_join": cached_join_seconds(body),
            }
        one = agent_listeners(self.engine, {})
        base_only = count_series(one.registry)
        render_one = renderer(one.metrics, one.registry)

        def change_and_render() -> None:
            one.metrics.suite_finished(synthetic_result("one", time.time()))
            render_one(None)

        change_and_render()
        out["one_suite"] = {
            "series": count_series(one.registry) - base_only,
            "render": Dist.of(timed(change_and_render, 50)).to_json(),
        }
        return out

    def listener_cost(self, loaded: list[int], reps: int) -> dict[str, Any]:
        """Time each of ``serve``'s listeners per suite result, by number of suites loaded."""
        out: dict[str, Any] = {}
        for count in loaded:
            suites = {f"lc{i:05d}": noop_suite(f"lc{i:05d}", 3600.0) for i in range(count)}
            listeners = agent_listeners(self.engine, suites)
            names = list(suites)[: min(reps, count)]
            now = time.time()
            for name in names:  # first results create the series; time the steady state
                listeners.fanout.suite_finished(synthetic_result(name, now))
            times: dict[str, list[float]] = {}
            for name in names:
                result = synthetic_result(name, now)
                for listener in listeners.fanout.listeners:
                    start = time.perf_counter()
                    listener.suite_finished(result)
                    elapsed = time.perf_counter() - start
                    times.setdefault(type(listener).__name__, []).append(elapsed)
            out[str(count)] = {k: Dist.of(v).to_json() for k, v in times.items()}
        return out

    async def serve_metrics(self, series: int, kind: str, inflight: int) -> dict[str, Any]:
        """Serve the agent's app (``/metrics`` ...) over a registry of about ``series`` series."""
        suites, loops = self.loops(kind, "int", inflight)
        self.served_suites = suites
        self.served_paths = {loop.name: loop.path for loop in loops}
        listeners = agent_listeners(self.engine, suites)
        reached, _ = fill_metrics(listeners.metrics, listeners.registry, series)
        self.served = listeners
        coordinator = Coordinator(
            engine=self.engine, suites=suites, listener=listeners.fanout, concurrency=inflight
        )
        state = agent_state(
            listeners.metrics,
            listeners.registry,
            listeners.health,
            listeners.history,
            list(suites),
            coordinator.run_batch,
        )
        sock = bind_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        ready = anyio.Event()
        scope = anyio.CancelScope()
        self.server_scope = scope

        cached = renderer(listeners.metrics, listeners.registry)(None)[0]
        app = with_cached_metrics(create_app(state), cached)

        async def serve() -> None:
            with scope:
                await run_server(config_for(app), sock, lambda _: ready.set())

        self.group.start_soon(serve)
        with anyio.fail_after(20):
            await ready.wait()
        return {"url": f"http://127.0.0.1:{port}", "series": reached}

    async def interference(self, seconds: float, delay_ms: int) -> dict[str, Any]:
        """Run the served suites' checks in closed loops for ``seconds``; return each sample."""
        assert self.served is not None
        coordinator = Coordinator(
            engine=self.engine,
            suites=self.served_suites,
            listener=self.served.fanout,
            concurrency=len(self.served_suites),
        )
        loops = [Loop(name, path) for name, path in self.served_paths.items()]
        await self.run_loops(coordinator, loops, anyio.current_time() + seconds, delay_ms)
        return {"samples": [s for loop in loops for s in loop.samples]}

    async def switch_interval(self, seconds: float) -> dict[str, Any]:
        """Set the interpreter's GIL switch interval (what-if); return the previous one."""
        previous = sys.getswitchinterval()
        sys.setswitchinterval(seconds)
        return {"previous": previous}

    async def stop_metrics(self) -> dict[str, Any]:
        if self.server_scope is not None:
            self.server_scope.cancel()
        self.served = None
        return {}

    async def dispatch(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.pop("cmd")
        gc.collect()  # start every command from the same heap, not the last one's garbage
        if name == "accuracy":
            return await self.accuracy(**command)
        if name == "throughput":
            return await self.throughput(**command)
        if name == "lag":
            return await self.lag(**command)
        if name == "listener_cost":
            return self.listener_cost(**command)
        if name == "render":
            return self.render_timings(**command)
        if name == "serve_metrics":
            return await self.serve_metrics(**command)
        if name == "interference":
            return await self.interference(**command)
        if name == "switch_interval":
            return await self.switch_interval(**command)
        if name == "stop_metrics":
            return await self.stop_metrics()
        if name == "rss":
            return {"rss": rss_bytes(os.getpid())}
        raise ValueError(f"unknown command {name!r}")


def with_cached_metrics(app: ASGIApp, body: bytes) -> ASGIApp:
    """Wrap the agent's app with ``/metrics-cached``: pre-rendered bytes (what-if: a cached
    exposition, whose per-suite re-render would happen when results arrive, not per scrape)."""
    headers = [
        (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics-cached":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def httpcore_client(engine: Engine, name: str) -> httpx.AsyncClient:
    """Return a client of target ``name`` as ``build_client`` makes it, but on httpx's default
    transport (httpcore) instead of the agent's own: what the agent used before it."""
    settings = engine.settings
    target = settings.targets[name]
    headers = {"User-Agent": USER_AGENT, MARKER_HEADER: settings.environment, **target.headers}
    inner = httpx.AsyncHTTPTransport(verify=engine.targets.context(name))
    return httpx.AsyncClient(
        base_url=target.base_url,
        headers=headers,
        timeout=target.timeout,
        transport=InstrumentedTransport(name, inner, engine.redact),
    )


def sample(key: str, test: TestResult) -> dict[str, Any]:
    """Return what one check's result recorded: test duration, phase sum, request duration."""
    request = test.requests[0] if test.requests else None
    return {
        "id": key,
        "test": test.duration_seconds,
        "phases": sum(request.phases.values()) if request is not None else None,
        "request": request.duration_seconds if request is not None else None,
        "ok": test.outcome is Outcome.PASSED,
    }


def timed(func: Callable[[], object], count: int) -> list[float]:
    """Return the duration of ``count`` calls of ``func``."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def timed_once(func: Callable[..., object], *args: Any) -> float:
    """Return how long one call of ``func(*args)`` took."""
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def cached_join_seconds(body: bytes) -> float:
    """Median time to serve ``body`` from per-suite cached blocks (what-if: cached exposition)."""
    blocks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    return Dist.of(timed(lambda: b"".join(blocks), 20)).p50


def worker_settings(
    target: str, state_dir: FilePath, *, fresh: bool = False, ca_bundle: FilePath | None = None
) -> Settings:
    """Return agent settings with one target, ``default``: pooled, or fresh connections; for an
    HTTPS target, trusting ``ca_bundle``."""
    return Settings(
        state_dir=state_dir,
        targets={
            "default": TargetSettings(base_url=target, fresh_connections=fresh, ca_bundle=ca_bundle)
        },
        log_level="WARNING",
    )


async def amain(target: str, state_dir: FilePath, ca_bundle: FilePath | None = None) -> None:
    disable_created_metrics()  # type: ignore[no-untyped-call]  # as serve does
    pooled = worker_settings(target, state_dir / "pooled", ca_bundle=ca_bundle)
    fresh = worker_settings(target, state_dir / "fresh", fresh=True, ca_bundle=ca_bundle)
    async with (
        open_engine(pooled, {}) as engine,
        open_engine(fresh, {}) as fresh_engine,
        anyio.create_task_group() as group,
    ):
        worker = Worker(engine, fresh_engine, target, group)
        print(f"{READY}{os.getpid()}", flush=True)
        try:
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.readline)
                if not line or line.strip() == "quit":
                    break
                try:
                    answer = await worker.dispatch(json.loads(line))
                except Exception as exc:  # reported to the driver, which raises it
                    logger.exception("command failed")
                    answer = {"error": f"{type(exc).__name__}: {exc}"}
                print("RESULT " + json.dumps(answer), flush=True)
        finally:
            await worker.aclose()
            group.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description="The agent under test, driven in-process.")
    parser.add_argument("--target", required=True)
    parser.add_argument("--state-dir", type=FilePath, required=True)
    parser.add_argument("--ca-bundle", type=FilePath, default=None, help="CA of an HTTPS target")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    gc.callbacks.append(_gc_callback)
    sys.setswitchinterval(serve_switch_interval())  # as serve runs
    gc.set_threshold(*serve_gc_threshold())
    pin_mmap_threshold_as_serve()
    anyio.run(
        amain, args.target, args.state_dir, args.ca_bundle, backend_options=serve_backend_options()
    )


if __name__ == "__main__":
    main()
