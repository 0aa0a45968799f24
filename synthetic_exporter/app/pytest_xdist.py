"""pytest-xdist: a suite and the suites it depends on run on one worker, each suite once.

``--dist loadscope`` (or ``loadgroup``) normally groups tests by module or class. For check
items (``file::suite::test``) this scheduler groups them by dependency group instead, so that
no suite runs twice (once for its own tests, once as another worker's dependency). xdist's own
``xdist_group`` marker cannot do it under pytest 9.2: xdist 3.8 renames node ids through an
attribute pytest 9.2 no longer reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

GROUPING_MODES = ("loadscope", "loadgroup")


class DependencyGroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """xdist's scope scheduling, a check item's scope being its suite's dependency group."""

    def __init__(self, config: pytest.Config, log: Any, groups: Mapping[str, str]) -> None:
        super().__init__(config, log)
        self.groups = groups

    def _split_scope(self, nodeid: str) -> str:
        parts = nodeid.split("::")
        if len(parts) == 3 and parts[1] in self.groups:
            return f"synthetic-group::{self.groups[parts[1]]}"
        scope: str = super()._split_scope(nodeid)
        return scope


class XdistScheduling:
    """Registered under ``--synthetic`` when pytest-xdist is installed."""

    def __init__(self, groups: Mapping[str, str]) -> None:
        self.groups = groups

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(
        self, config: pytest.Config, log: Any
    ) -> DependencyGroupScheduling | None:
        """Schedule by dependency group under ``--dist loadscope`` or ``loadgroup``."""
        if config.getvalue("dist") not in GROUPING_MODES:
            return None
        return DependencyGroupScheduling(config, log, self.groups)
