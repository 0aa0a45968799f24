"""``serve``: the scheduler and the HTTP server in one anyio process."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from loguru import logger
from prometheus_client import CollectorRegistry, disable_created_metrics

from synthetic_exporter.app.http_limits import BodyLimit, raise_fd_limit
from synthetic_exporter.app.routes import AgentState, create_app
from synthetic_exporter.app.shutdown import cancel_on_signal
from synthetic_exporter.app.startup_log import log_startup
from synthetic_exporter.app.supervision import Liveness, supervised
from synthetic_exporter.app.watchdog import LoopWatchdog
from synthetic_exporter.app.web import bind_socket, config_for, run_server
from synthetic_exporter.app.web_config import ASGIApp, BasicAuth, WebConfig, uvicorn_tls_options
from synthetic_exporter.core.results import SuiteResult, TestResult
from synthetic_exporter.core.settings import Settings, listen_address
from synthetic_exporter.core.version import __version__
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.ledger import Ledger
from synthetic_exporter.engine.loader import LoadResult
from synthetic_exporter.engine.orphans import SweepEvents
from synthetic_exporter.engine.runner import Engine
from synthetic_exporter.engine.scheduler import Scheduler
from synthetic_exporter.engine.wiring import Fanout, open_engine, sweep_leftovers
from synthetic_exporter.exporter.failure_log import FailureLogger
from synthetic_exporter.exporter.health import Health
from synthetic_exporter.exporter.history import History
from synthetic_exporter.exporter.metrics import Metrics, MetricsOptions
from synthetic_exporter.exporter.otlp import otlp_listener
from synthetic_exporter.exporter.run_store import HISTORY_FILE, RunStore

ReadyCallback = Callable[[str], None]


# How long a thread may hold the GIL before the event loop can take it back (Python's default
# is 5 ms). Rendering /metrics, sync tests and boto3 run in worker threads; a short interval
# keeps them from delaying the loop's clocks by whole milliseconds.
SWITCH_INTERVAL_SECONDS = 0.0005


# Collect the young generation every 2,000 net allocations instead of 700: a check run allocates
# a few thousand short-lived objects, so the default runs the collector several times per check.
# Higher thresholds save little more CPU but lengthen each pause (20,000: 8 ms young
# collections under load, which showed as schedule lag; 2,000: about 2 ms).
GC_THRESHOLD = (2_000, 10, 10)


# glibc serves blocks from this size up with mmap, and unmaps them when freed. Left alone it
# raises the threshold to the largest block freed so far (up to 32 MiB): a scrape's exposition
# and its gzip then come from the heap, and what they leave there stays resident (12 MiB at
# 1,000 suites).
MMAP_THRESHOLD_BYTES = 128 * 1024
M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


def fix_mmap_threshold() -> bool:
    """Pin glibc's mmap threshold at ``MMAP_THRESHOLD_BYTES``; return whether it took.

    Elsewhere (musl, macOS) there is nothing to pin, and this returns False.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # only here: 0.4 MiB

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def tune_process() -> None:
    """Settle a long-running agent once its checks are loaded.

    ``gc.freeze()`` moves what exists now (checks, clients, settings: alive for the whole
    process) out of the collector's reach, so that full collections stop pausing the loop; a
    higher young-generation threshold runs the collector less often; the short GIL switch
    interval lets the event loop preempt worker threads sooner; a fixed mmap threshold gives the
    memory of large buffers back when they are freed; the open-files limit goes up to the hard
    limit (every connection, served or made by a check, holds a file descriptor).
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    fix_mmap_threshold()
    raise_fd_limit()


def intervals_of(settings: Settings, loaded: LoadResult) -> dict[str, float]:
    """Return every loaded suite's interval (its own, else the default)."""
    return {name: s.interval or settings.interval for name, s in loaded.suites.items()}


def constant_labels(settings: Settings) -> dict[str, str]:
    """Return the labels put on every metric: environment, shard (if any) and the extras."""
    shard = {"shard": str(settings.shard.index)} if settings.shard else {}
    return {"environment": settings.environment, **shard, **settings.labels}


@dataclass(slots=True)
class PendingCleanups:
    """Keeps the pending clean-up gauge in step with the ledger.

    Sweeps refresh every suite; a suite run can only add pending entries of its own, and only
    when a janitor failed, so that is the one case a result refreshes (one suite, one query).
    """

    ledger: Ledger
    metrics: Metrics
    suites: list[str]

    def refresh(self) -> None:
        """Read the ledger's pending counts into the gauge."""
        self.metrics.cleanup_pending(self.ledger.pending_by_suite(), self.suites)

    def test_finished(self, result: TestResult) -> None:
        """Ignore single tests."""

    def suite_finished(self, result: SuiteResult) -> None:
        """Refresh the suite's count when one of its janitors failed."""
        if result.janitor_failures:
            self.metrics.cleanup_pending_of(result.suite, self.ledger.pending_count(result.suite))


def counted_in(metrics: Metrics) -> SweepEvents:
    """Return sweep events that count failed janitors and listings as clean-up failures."""

    def count(suite: str, kind: str) -> None:
        metrics.cleanup_failed(suite)

    return SweepEvents(cleanup_failed=count, listing_failed=count)


async def sweep_periodically(engine: Engine, pending: PendingCleanups) -> None:
    """Sweep leftovers now, then retry pending clean-ups every ``sweep_interval``.

    Each sweep also lists each kind's synthetic data for orphans (see
    :mod:`synthetic_exporter.engine.orphans`).
    """
    await sweep_leftovers(engine)
    pending.refresh()
    while True:
        await anyio.sleep(engine.settings.sweep_interval)
        await engine.sweeper.sweep()
        pending.refresh()


async def serve(
    settings: Settings,
    loaded: LoadResult,
    registry: CollectorRegistry | None = None,
    on_ready: ReadyCallback | None = None,
    web: WebConfig | None = None,
) -> bool:
    """Run the agent until SIGTERM/SIGINT; return whether a signal stopped it."""
    tls = uvicorn_tls_options(web) if web is not None else {}
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
    registry = CollectorRegistry() if registry is None else registry
    intervals = intervals_of(settings, loaded)
    log_startup(settings, loaded)
    options = MetricsOptions.from_settings(settings)
    metrics = Metrics(registry, constant_labels(settings), __version__, options)
    metrics.suites_loaded(loaded.suites, len(loaded.errors), settings.interval)
    health = Health(intervals=intervals, started_at=time.time(), load_errors=loaded.errors)
    tune_process()
    history = History(settings.history_size)
    host, port = listen_address(settings)
    stopped: list[int] = []
    history_file = settings.state_dir / HISTORY_FILE
    store = RunStore(history_file, settings.history_retention, int(settings.history_max_bytes))
    async with (
        open_engine(settings, loaded.suites, counted_in(metrics)) as engine,
        store.running(),  # opened in a thread; closed (queued runs stored) after the last run
    ):
        pending = PendingCleanups(engine.ledger, metrics, list(loaded.suites))
        failures = FailureLogger(settings.failure_reminder)
        listener = Fanout([metrics, health, history, pending, failures])
        listener.listeners.append(store)  # durable history: only queues, the writer is a thread
        metrics.watch_history_drops(lambda: store.dropped)
        if engine.browser is not None:  # the [browser] extra: its processes, memory, restarts
            metrics.watch_browser(engine.browser.stats)
        spans = otlp_listener(settings) if (settings.otlp_endpoint or "").strip() else None
        if spans is not None:  # OpenTelemetry export, off by default
            listener.listeners.append(spans)
            metrics.watch_span_drops(lambda: spans.dropped_spans)
        coordinator = Coordinator(
            engine=engine, suites=loaded.suites, listener=listener, concurrency=settings.concurrency
        )
        scheduler = Scheduler(
            coordinator=coordinator,
            intervals=intervals,
            on_overrun=metrics.overrun,
            on_lag=metrics.schedule_lag,
        )
        token = settings.admin_token.get_secret_value() if settings.admin_token else None
        state = AgentState(
            render_metrics=metrics.render_off_loop,
            health=health,
            history=history,
            store=store,
            suites=list(loaded.suites),
            trigger=coordinator.run_batch,
            admin_token=token,
            environment=settings.environment,
        )
        app: ASGIApp = create_app(state)
        if web is not None and web.basic_auth_users:
            app = BasicAuth(app, web.basic_auth_users)
        app = BodyLimit(app)  # outermost: no layer behind it sees a body above the limit
        scheme = "https" if tls else "http"
        sock = bind_socket(host, port)
        shown = f"[{host}]" if ":" in host else host

        def announce(bound: int) -> None:
            state.ready = True
            url = f"{scheme}://{shown}:{bound}"
            logger.info(f"listening on {url}")
            if on_ready is not None:
                on_ready(url)

        async def drain() -> None:
            scheduler.draining = True
            await coordinator.idle()

        liveness = Liveness()
        watchdog = LoopWatchdog(on_blocked=metrics.loop_blocked)
        async with anyio.create_task_group() as group:
            group.start_soon(
                cancel_on_signal, group.cancel_scope, settings.shutdown_grace, stopped, drain
            )
            group.start_soon(
                supervised,
                liveness,
                "http server",
                run_server,
                config_for(app, **tls),
                sock,
                announce,
            )
            group.start_soon(supervised, liveness, "sweeper", sweep_periodically, engine, pending)
            group.start_soon(supervised, liveness, "watchdog", watchdog.run)
            await group.start(supervised, liveness, "scheduler", scheduler.run)
            state.alive, state.why_not_alive = liveness.alive, liveness.problem
        if spans is not None:
            await anyio.to_thread.run_sync(spans.close)  # flushes, a few seconds at most
    return bool(stopped)
