"""Wiring: the engine's shared parts (clients, ledger, sweeper) and the ways to run suites."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from loguru import logger

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.browser import BrowserPool
from synthetic_exporter.core.logs import redact
from synthetic_exporter.core.results import SuiteResult, TestResult
from synthetic_exporter.core.settings import Settings, url_passwords
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.ledger import Ledger
from synthetic_exporter.engine.orphans import SweepEvents
from synthetic_exporter.engine.runner import Engine, Listener
from synthetic_exporter.engine.sweeper import Sweeper
from synthetic_exporter.http.clients import Targets

LEDGER_FILE = "ledger.sqlite3"


def secret_variables(settings: Settings) -> dict[str, str]:
    """Return every secret value the agent knows, by the variable that set it."""
    found = {
        f"SYNTHETIC_SECRETS__{name.upper()}": value.get_secret_value()
        for name, value in settings.secrets.items()
    }
    if settings.admin_token is not None:
        found["SYNTHETIC_ADMIN_TOKEN"] = settings.admin_token.get_secret_value()
    return found


def secret_values(settings: Settings) -> list[str]:
    """Return every secret value the agent knows (URL passwords too), for redaction."""
    return [*secret_variables(settings).values(), *url_passwords(settings)]


def redactor(settings: Settings) -> Callable[[str], str]:
    """Return a function that masks secret values in text."""
    values = secret_values(settings)
    return lambda text: redact(text, values)


@asynccontextmanager
async def open_engine(
    settings: Settings, suites: Mapping[str, Suite], events: SweepEvents | None = None
) -> AsyncIterator[Engine]:
    """Build clients, ledger, sweeper (reporting to ``events``), browser pool; close them after."""
    targets = Targets(settings, redactor(settings))
    mask = targets.mask  # OAuth2 tokens too, as they are issued
    ledger = Ledger(settings.state_dir / LEDGER_FILE, owner=uuid.uuid4().hex)
    sweeper = Sweeper(
        ledger=ledger,
        suites=suites,
        settings=settings,
        clients=targets.shared,
        redact=mask,
        orphan_grace=settings.orphan_grace,
        intent_max_age=settings.intent_max_age,
        events=events or SweepEvents(),
    )
    try:
        async with BrowserPool(settings) as browser:  # Chromium starts at the first page
            yield Engine(
                settings=settings,
                targets=targets,
                ledger=ledger,
                sweeper=sweeper,
                redact=mask,
                browser=browser,
            )
    finally:
        await targets.aclose()
        ledger.close()


async def sweep_leftovers(engine: Engine) -> None:
    """Adopt entries a dead process left open, retry every due clean-up, run orphan listings.

    Adopted intents (creates whose answer never arrived) are looked up by their keys.
    """
    adopted = engine.ledger.adopt_orphans()
    if adopted:
        intents = len(engine.ledger.unresolved())
        logger.bind(count=adopted, intents=intents).warning(
            f"found {adopted} leftover test resources; cleaning up"
            + (f" ({intents} unfinished creates to look up by key)" if intents else "")
        )
    failures = await engine.sweeper.sweep()
    logger.bind(failures=len(failures)).info(
        f"start-up sweep done, {len(failures)} clean-up failures"
    )


@dataclass(slots=True)
class Fanout:
    """Forwards result events to several listeners, in order."""

    listeners: list[Listener] = field(default_factory=list)

    def test_finished(self, result: TestResult) -> None:
        """Forward a finished test to every listener; one that raises is logged and skipped."""
        for listener in self.listeners:
            try:
                listener.test_finished(result)
            except Exception:  # one consumer's bug must not starve the others
                logger.exception(f"{type(listener).__name__} failed on {result.full_name}")

    def suite_finished(self, result: SuiteResult) -> None:
        """Forward a finished suite to every listener; one that raises is logged and skipped."""
        for listener in self.listeners:
            try:
                listener.suite_finished(result)
            except Exception:
                logger.exception(f"{type(listener).__name__} failed on suite {result.suite}")


@dataclass(slots=True)
class KeepingFanout(Fanout):
    """A fanout that also keeps every suite result (for one-off runs)."""

    suites: list[SuiteResult] = field(default_factory=list)

    def suite_finished(self, result: SuiteResult) -> None:
        """Keep the suite's result, then forward it."""
        self.suites.append(result)
        Fanout.suite_finished(self, result)


async def run_once(
    settings: Settings,
    suites: Mapping[str, Suite],
    names: Iterable[str],
    listener: Listener,
    stop_after_failure: str | None = None,
) -> None:
    """Sweep leftovers, then run the named suites (and their dependencies) once.

    With ``stop_after_failure`` (a skip reason), suites run one at a time and those after the
    first bad test are skipped with that reason (``run --once -x``).
    """
    async with open_engine(settings, suites) as engine:
        await sweep_leftovers(engine)
        concurrency = settings.concurrency if stop_after_failure is None else 1
        coordinator = Coordinator(
            engine=engine, suites=suites, listener=listener, concurrency=concurrency
        )
        if stop_after_failure is None:
            await coordinator.run_batch(names)
        else:
            await coordinator.run_until_failure(names, stop_after_failure)
