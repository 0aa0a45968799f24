"""The public authoring API stays exactly this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import synthetic_exporter
from synthetic_exporter import JanitorContext, T
from synthetic_exporter.authoring.context import Harness
from synthetic_exporter.core.settings import Settings, TargetSettings

# What a check author may use on ``t``: the runner's plumbing stays private (in a Harness).
T_MEMBERS = {
    "cleanup",
    "client",
    "fail",
    "failed",
    "fatal",
    "full_name",
    "http",
    "intend",
    "log",
    "name",
    "page",
    "report_storage",
    "run",
    "secret",
    "skip",
    "state",
    "step",
    "suite",
    "targets",
    "track",
}
JANITOR_CONTEXT_MEMBERS = {"client", "http", "log", "suite", "targets"}


def public_members(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


class Unused:
    """Neither a tracker nor a subtest runner is called here."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call of {name}")


def test_exported_names() -> None:
    assert sorted(synthetic_exporter.__all__) == [
        "JanitorContext",
        "Orphan",
        "Resource",
        "Suite",
        "T",
        "__version__",
    ]


def test_importing_the_package_configures_no_logging() -> None:
    import subprocess
    import sys

    code = (
        "from loguru import logger\n"
        "handlers = dict(logger._core.handlers)\n"
        "import synthetic_exporter\n"
        "assert dict(logger._core.handlers) == handlers\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_t_shows_check_authors_only_their_members(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        targets={"default": TargetSettings(base_url="https://user:hunter2@example.com")},
    )
    harness = Harness(settings=settings, clients={}, tracker=Unused(), subtests=Unused())
    t = T("suite", "test", {}, harness)
    assert public_members(T) == T_MEMBERS
    assert public_members(t) == T_MEMBERS  # no public instance attributes either
    assert not hasattr(t, "__dict__")  # nor can any be added
    assert all(name.startswith("_") for name in T.__slots__)
    assert t.targets == frozenset({"default"})  # names only: no URL, no password


def test_janitor_context_shows_only_its_members(tmp_path: Path) -> None:
    j = JanitorContext("suite", settings=Settings(state_dir=tmp_path), clients={})
    assert public_members(JanitorContext) == JANITOR_CONTEXT_MEMBERS
    assert public_members(j) == JANITOR_CONTEXT_MEMBERS
    assert not hasattr(j, "__dict__")
