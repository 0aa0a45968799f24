"""The agent's start-up summary: what it loaded, what it calls and how often, where it keeps state.

Logged once by ``serve`` before the first suite runs. Target URLs show their password as
``***`` and every configured secret value is masked; headers are never logged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from loguru import logger

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.durations import format_duration
from synthetic_exporter.core.logs import redact
from synthetic_exporter.core.settings import Settings, TargetSettings, mask_url_password
from synthetic_exporter.core.target_settings import DEFAULT_MAX_BODY_BYTES
from synthetic_exporter.core.version import __version__
from synthetic_exporter.engine.loader import LoadResult
from synthetic_exporter.engine.wiring import secret_values
from synthetic_exporter.exporter.report import plural
from synthetic_exporter.http.network import format_size

__all__ = ["FEW_SUITES", "log_startup"]

FEW_SUITES = 10
"""Up to this many suites, their names are listed at INFO; beyond, at DEBUG only."""


def suite_summary(suite: Suite, interval: float) -> str:
    """Return e.g. 'orders (2 tests, every 1m, after auth)'."""
    after = f", after {', '.join(suite.depends_on)}" if suite.depends_on else ""
    every = format_duration(interval)
    return f"{suite.name} ({plural(len(suite.tests), 'test')}, every {every}{after})"


def interval_summary(intervals: Iterable[float]) -> str:
    """Return e.g. '2 suites every 30s, 1 suite every 5m' (shortest interval first)."""
    counts = Counter(intervals)
    return ", ".join(
        f"{plural(counts[i], 'suite')} every {format_duration(i)}" for i in sorted(counts)
    )


def shown_url(target: TargetSettings, secrets: list[str]) -> str:
    """Return a target's base URL with its password and any secret value masked."""
    return redact(mask_url_password(target.base_url), secrets)


def target_notes(target: TargetSettings) -> str:
    """Return a target's notable options, e.g. ' (HTTP/2, TLS not verified)', or ''."""
    notes = [
        note
        for note, on in (("HTTP/2", target.http2), ("TLS not verified", not target.verify))
        if on
    ]
    if target.ip_protocol is not None:
        family = f"IPv{target.ip_protocol[-1]}"
        notes.append(f"{family} first" if target.ip_protocol_fallback else f"{family} only")
    if target.max_body_bytes != DEFAULT_MAX_BODY_BYTES:
        notes.append(f"bodies up to {format_size(target.max_body_bytes)}")
    return f" ({', '.join(notes)})" if notes else ""


def log_startup(settings: Settings, loaded: LoadResult) -> None:
    """Log what the agent loaded and how it is set up, a few INFO lines (details at DEBUG)."""
    suites = loaded.suites.values()
    intervals = {s.name: s.interval or settings.interval for s in suites}
    tests = sum(len(s.tests) for s in suites)
    errors = f" ({plural(len(loaded.errors), 'load error')})" if loaded.errors else ""
    logger.bind(
        version=__version__,
        checks_path=str(settings.checks_path),
        suites=len(loaded.suites),
        tests=tests,
        load_errors=len(loaded.errors),
    ).info(
        f"synthetic-exporter {__version__} starting: {plural(len(loaded.suites), 'suite')},"
        f" {plural(tests, 'test')} from {settings.checks_path}{errors}"
    )
    shard = f"shard {settings.shard}" if settings.shard else "no shard"
    logger.bind(
        environment=settings.environment,
        shard=str(settings.shard) if settings.shard else None,
        state_dir=str(settings.state_dir),
    ).info(f"environment {settings.environment}, {shard}, state in {settings.state_dir}")
    if 0 < len(loaded.suites) <= FEW_SUITES:
        listed = ", ".join(suite_summary(s, intervals[s.name]) for s in suites)
        logger.info(f"suites: {listed}")
    for suite in suites:
        logger.bind(
            suite=suite.name,
            interval_seconds=intervals[suite.name],
            depends_on=list(suite.depends_on),
            tests=[t.name for t in suite.tests],
        ).debug(f"suite {suite.name}: {', '.join(t.name for t in suite.tests) or 'no tests'}")
    secrets = secret_values(settings)
    for name, target in settings.targets.items():
        url = shown_url(target, secrets)
        logger.bind(target=name, base_url=url).info(f"target {name}: {url}{target_notes(target)}")
    if not settings.targets:
        logger.info("no targets configured")
    logger.bind(
        default_interval_seconds=settings.interval,
        sweep_interval_seconds=settings.sweep_interval,
        failure_reminder_seconds=settings.failure_reminder,
    ).info(
        f"intervals: {interval_summary(intervals.values()) or 'no suites'};"
        f" default {format_duration(settings.interval)};"
        f" leftovers swept every {format_duration(settings.sweep_interval)};"
        f" lasting failures logged again every {format_duration(settings.failure_reminder)}"
    )
