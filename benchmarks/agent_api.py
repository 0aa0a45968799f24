"""The agent internals the harness uses that change with issue 7's design work, in one place.

The harness wires the agent the way ``serve`` does. Three things differ between versions of
the agent: how ``/metrics`` is rendered (the module's ``render(registry, accept)``, or a cached
exposition behind ``Metrics.render(accept)``), what ``AgentState`` takes first (the registry,
or a render coroutine), whether ``serve`` freezes the garbage collector after loading, and
which event loop the CLI runs it on.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthetic_exporter.app import serve as serve_module
from synthetic_exporter.app.routes import AgentState, Trigger
from synthetic_exporter.exporter import metrics as metrics_module

Render = Callable[[str | None], tuple[bytes, str]]
ROOT = Path(__file__).resolve().parent.parent


def renderer(metrics: metrics_module.Metrics, registry: Any) -> Render:
    """Return what a scrape of this agent renders: its own exposition path."""
    method = getattr(metrics, "render", None)
    if callable(method):
        bound: Render = method
        return bound
    module_render: Callable[[Any, str | None], tuple[bytes, str]] = metrics_module.render_registry
    return lambda accept: module_render(registry, accept)


def agent_state(
    metrics: metrics_module.Metrics,
    registry: Any,
    health: Any,
    history: Any,
    suites: list[str],
    trigger: Trigger,
) -> AgentState:
    """Return the routes' state as ``serve`` builds it (admin run disabled)."""
    first: Any = registry
    if "render_metrics" in {f.name for f in dataclasses.fields(AgentState)}:
        first = metrics.render_off_loop
    return AgentState(
        render_metrics=first,
        health=health,
        history=history,
        suites=suites,
        trigger=trigger,
        admin_token=None,
    )


def serve_freezes_gc() -> bool:
    """Return whether ``serve`` calls ``gc.freeze()`` after loading (so the harness does too)."""
    return hasattr(serve_module, "tune_process") or "gc.freeze()" in inspect.getsource(
        serve_module.serve
    )


def serve_switch_interval() -> float:
    """Return the GIL switch interval ``serve`` sets (Python's default when it sets none)."""
    return float(getattr(serve_module, "SWITCH_INTERVAL_SECONDS", 0.005))


def serve_gc_threshold() -> tuple[int, int, int]:
    """Return the collector thresholds ``serve`` sets (Python's defaults when it sets none)."""
    threshold: tuple[int, int, int] = getattr(serve_module, "GC_THRESHOLD", (700, 10, 10))
    return threshold


def pin_mmap_threshold_as_serve() -> None:
    """Pin glibc's mmap threshold if ``serve`` does (nothing where it does not)."""
    fix = getattr(serve_module, "fix_mmap_threshold", None)
    if fix is not None:
        fix()


def serve_backend_options() -> dict[str, Any]:
    """Return the ``anyio.run`` backend options the CLI runs ``serve`` with (uvloop or not)."""
    try:
        from synthetic_exporter.app.eventloop import backend_options
    except ImportError:
        return {}
    return backend_options()


def code_under_test() -> str:
    """Return the commit measured, and the agent files changed since it (if any).

    ``BENCH_CODE`` names it instead, for a run from a snapshot without git (``git archive``).
    """
    if os.environ.get("BENCH_CODE"):
        return os.environ["BENCH_CODE"]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        # Only trailing whitespace: porcelain lines start with a status column that may be " ".
        return done.stdout.rstrip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "synthetic_exporter").splitlines()
    if not changed:
        return f"{commit} (clean)"
    files = ", ".join(line[3:].removeprefix("synthetic_exporter/") for line in changed)
    return f"{commit} + uncommitted changes to {files}"
