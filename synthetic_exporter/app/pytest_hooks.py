"""The hooks of a ``pytest --synthetic`` session: settings, loading, collection, reports.

Imported by :mod:`synthetic_exporter.app.pytest_plugin` only when ``--synthetic`` is given.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from synthetic_exporter.app.pytest_nodes import (
    RUNS_KEY,
    CheckFile,
    CheckItem,
    NotCollected,
    dependency_order,
)
from synthetic_exporter.app.pytest_session import OnDemandRuns
from synthetic_exporter.app.startup_checks import (
    StartupError,
    check_ca_bundles,
    check_client_certificates,
    check_ledger,
)
from synthetic_exporter.app.statedir import StateDirError
from synthetic_exporter.core.logs import log_to_standard_logging
from synthetic_exporter.core.results import Outcome
from synthetic_exporter.core.settings import (
    Settings,
    SettingsError,
    load_settings,
    unknown_variable_warnings,
)
from synthetic_exporter.core.version import __version__
from synthetic_exporter.engine.assertions import import_helpers_from
from synthetic_exporter.engine.graph import dependency_groups, with_dependencies
from synthetic_exporter.engine.loader import LoadResult, load, without_secret_names
from synthetic_exporter.engine.wiring import secret_variables
from synthetic_exporter.exporter.report import plural

OPTION = "--synthetic"


def start_session(config: pytest.Config, value: str) -> None:
    """Read the settings, load the checks and register the session's hooks."""
    for line in unknown_variable_warnings():
        config.issue_config_time_warning(pytest.PytestConfigWarning(line), stacklevel=2)
    settings = _settings(value)
    log_to_standard_logging(settings.log_level)  # pytest captures and shows it per test
    plugin = SyntheticSession(settings)
    config.pluginmanager.register(plugin, "synthetic-session")
    if config.pluginmanager.hasplugin("xdist"):
        from synthetic_exporter.app.pytest_xdist import XdistScheduling

        config.pluginmanager.register(XdistScheduling(plugin.groups), "synthetic-xdist")
    plugin.add_collection_path(config)
    for tag in sorted({tag for s in plugin.loaded.suites.values() for tag in s.tags}):
        config.addinivalue_line("markers", f"{tag}: synthetic suite tag")


def _settings(checks: str) -> Settings:
    overrides: dict[str, object] = {"checks_path": Path(checks)} if checks else {}
    try:
        settings = load_settings(**overrides)
        check_ca_bundles(settings)
        check_client_certificates(settings)
    except SettingsError as exc:
        raise pytest.UsageError(f"synthetic-exporter: invalid settings:\n{exc}") from None
    except StartupError as exc:
        raise pytest.UsageError(f"synthetic-exporter: {exc.variable}: {exc}") from None
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # each xdist worker is an agent of its own, with its own ledger
        return settings.model_copy(update={"state_dir": settings.state_dir / f"pytest-{worker}"})
    return settings


class SyntheticSession:
    """The hooks of a ``--synthetic`` session: collection of check files and their runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.checks_path
        if not self.root.exists():
            raise pytest.UsageError(f"{OPTION}: {self.root}: checks path does not exist")
        import_helpers_from(self.root if self.root.is_dir() else self.root.parent)
        self.loaded: LoadResult = without_secret_names(load(self.root), secret_variables(settings))
        self.files = {Path(s.file).resolve() for s in self.loaded.suites.values()}
        self.files |= {Path(e.file).resolve() for e in self.loaded.errors}
        self.groups = dependency_groups(self.loaded.suites)
        self.runs = OnDemandRuns(settings, self.loaded.suites)

    def add_collection_path(self, config: pytest.Config) -> None:
        """Collect the checks path: instead of the default paths, or next to those given."""
        if config.args_source is not pytest.Config.ArgsSource.ARGS:
            config.args[:] = [str(self.root)]
        elif str(self.root) not in config.args:
            config.args.append(str(self.root))
        config.stash[RUNS_KEY] = self.runs

    def _is_check_file(self, path: Path) -> bool:
        return path.resolve() in self.files

    def pytest_report_header(self, config: pytest.Config) -> str:
        """Say what was loaded, from where, against which targets."""
        tests = sum(len(s.tests) for s in self.loaded.suites.values())
        targets = ", ".join(self.settings.targets) or "none"
        return (
            f"synthetic-exporter {__version__}: {plural(len(self.loaded.suites), 'suite')},"
            f" {plural(tests, 'test')}"
            f" from {self.root} (targets: {targets})"
        )

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> CheckFile | None:
        """Collect a check file with its suites (or its load errors)."""
        if not self._is_check_file(file_path):
            return None
        resolved = file_path.resolve()
        suites = [s for s in self.loaded.suites.values() if Path(s.file).resolve() == resolved]
        errors = [e for e in self.loaded.errors if Path(e.file).resolve() == resolved]
        found = [w for w in self.loaded.warnings if Path(w.file).resolve() == resolved]
        return CheckFile.from_loaded(parent, file_path, suites, errors, found)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(
        self, module_path: Path, parent: pytest.Collector
    ) -> NotCollected | None:
        """Keep pytest's Python collector off check files named like test files."""
        if self._is_check_file(module_path):
            return NotCollected.from_parent(parent, path=module_path)
        return None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Put check items in dependency order (dependencies' suites first)."""
        order = with_dependencies(self.loaded.suites, self.loaded.suites)
        items[:] = list(dependency_order(items, order))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Open the engine for the selected check items (not for ``--collect-only``)."""
        selected: dict[str, list[str]] = {}
        for item in session.items:
            if isinstance(item, CheckItem):
                selected.setdefault(item.suite.name, []).append(item.test.name)
        if not selected or session.config.option.collectonly:
            return
        try:
            check_ledger(self.settings)
            self.runs.open(selected)
        except StartupError as exc:
            raise pytest.UsageError(f"synthetic-exporter: {exc.variable}: {exc}") from None
        except StateDirError as exc:
            raise pytest.UsageError(f"synthetic-exporter: SYNTHETIC_STATE_DIR: {exc}") from None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Give a check's call report the engine's duration, outcome and the test's location."""
        report = yield
        if not isinstance(item, CheckItem) or call.when != "call" or item.result is None:
            return report
        result = item.result
        report.duration = result.duration_seconds
        report.synthetic_outcome = result.outcome.value  # type: ignore[attr-defined]
        if report.skipped:
            path, line, _ = item.reportinfo()
            report.longrepr = (str(path), line + 1, f"Skipped: {result.message}")
        return report

    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, Any] | None:
        """Name flaky passes, errors and timeouts as the agent does."""
        outcome = getattr(report, "synthetic_outcome", None)
        if report.when != "call" or outcome is None:
            return None
        if outcome == Outcome.FLAKY.value:
            return "flaky", "f", ("FLAKY", {"yellow": True})
        if outcome in (Outcome.ERROR.value, Outcome.TIMEOUT.value):
            return "failed", "F", (outcome.upper(), {"red": True})
        return None

    def pytest_sessionfinish(self) -> None:
        """Close the engine: clients, ledger, event loop, state directory."""
        self.runs.close()
        for suite in self.runs.book.suites.values():
            for failure in suite.janitor_failures:
                warnings.warn(
                    pytest.PytestWarning(
                        f"{suite.suite}: janitor {failure.name} failed: {failure.message}"
                    ),
                    stacklevel=1,
                )
