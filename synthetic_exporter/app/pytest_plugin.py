"""The pytest plugin: ``pytest --synthetic [CHECKS]`` runs check files as pytest items.

Registered through the ``pytest11`` entry point and inert unless ``--synthetic`` is given: this
module imports nothing of the agent, so a team's other pytest runs do not pay for it (the agent's
imports, about 0.25 s, happen in :mod:`synthetic_exporter.app.pytest_hooks` under the option).
``CHECKS`` (a directory or file; default ``SYNTHETIC_CHECKS_PATH``) is collected in place of
pytest's default paths, or next to the paths given (``pytest tests/ --synthetic=checks``).
Every test of every suite is an item ``file::suite::test``, in dependency order; suite tags
are markers (``-m``); the agent's engine runs them with the agent's settings, so outcomes,
dependency skips, retries, timeouts, clean-ups, the ledger and janitors are the agent's.
"""

from __future__ import annotations

import pytest

OPTION = "--synthetic"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--synthetic [CHECKS]``."""
    group = parser.getgroup("synthetic", "synthetic-exporter checks")
    group.addoption(
        OPTION,
        nargs="?",
        const="",
        default=None,
        metavar="CHECKS",
        help="run synthetic-exporter check files (a directory or file; default:"
        " SYNTHETIC_CHECKS_PATH) with the agent's settings",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Under ``--synthetic``: start the session (settings, checks, hooks)."""
    value = config.getoption(OPTION.lstrip("-"))
    if value is None:
        return
    from synthetic_exporter.app.pytest_hooks import start_session

    start_session(config, value)
