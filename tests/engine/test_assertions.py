"""pytest's explanations of failed comparisons in check files, outside pytest as inside it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _pytest.assertion import util

from synthetic_exporter.core.results import TestResult
from synthetic_exporter.core.settings import Settings
from synthetic_exporter.engine import _pytest_explain
from synthetic_exporter.engine.loader import load
from synthetic_exporter.engine.runner import MESSAGE_MAX_CHARS, MESSAGE_MAX_LINES, bounded_message
from tests.conftest import cli_env, run_cli, write_checks
from tests.engine_helpers import by_name, run_suites

SettingsFor = Callable[..., Settings]

COMPARISONS = """
    import dataclasses

    from pydantic import BaseModel

    from synthetic_exporter import Suite, T

    suite = Suite("cmp", stop_on_failure=False)


    @dataclasses.dataclass
    class Order:
        id: int
        state: str


    class Invoice(BaseModel):
        id: int
        status: str


    @suite.test
    def dicts(t: T) -> None:
        assert {"a": 1, "confirmed": False} == {"a": 1, "confirmed": True}


    @suite.test
    def lists(t: T) -> None:
        assert [1, 2, 3] == [1, 2]


    @suite.test
    def sets(t: T) -> None:
        assert {1, 2} == {2, 3}


    @suite.test
    async def strings(t: T) -> None:
        assert "status: open\\nid: 7\\ntotal: 100%" == "status: paid\\nid: 7\\ntotal: 100%"


    @suite.test
    def dataclasses_(t: T) -> None:
        assert Order(1, "paid") == Order(1, "open")


    @suite.test
    def models(t: T) -> None:
        assert Invoice(id=1, status="paid") == Invoice(id=1, status="open")


    @suite.test
    def long_dicts(t: T) -> None:
        assert {i: i for i in range(100)} == {i: -i for i in range(100)}


    @suite.test
    def secrets(t: T) -> None:
        assert {"token": t.secret("api_key")} == {"token": "expected"}, "token differs"


    @suite.test
    def multi_line(t: T) -> None:
        got = {"id": 7, "confirmed": False}
        assert got == {
            "id": 7,
            "confirmed": True,
        }, "order not confirmed"
"""


@pytest.fixture
def outside_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test as the agent runs: no pytest hook explains comparisons (pytest's comes back)."""
    monkeypatch.setattr(util, "_reprcompare", None)


def test_the_private_pytest_names_exist_and_explain_a_dict() -> None:
    """Fails when a pytest upgrade moves what _pytest_explain relies on: fix that module."""
    assert hasattr(util, "_reprcompare"), "pytest's rewritten asserts no longer call _reprcompare"
    assert callable(util.assertrepr_compare)
    assert _pytest_explain.SUPPORTED, "util.assertrepr_compare changed: see _pytest_explain"
    text = _pytest_explain.explain("==", {"a": 1, "confirmed": False}, {"a": 1, "confirmed": True})
    assert text is not None
    lines = text.split("\n~")
    assert "Differing items:" in lines
    assert "{'confirmed': False} != {'confirmed': True}" in lines
    assert not any("-v" in line for line in lines), "pytest's command-line hints are dropped"


def test_no_explanation_for_what_pytest_does_not_explain() -> None:
    assert _pytest_explain.explain("==", 1, 2) is None
    assert _pytest_explain.explain("<", [1], [0]) is None


def test_loading_a_check_file_installs_the_explanation_unless_pytest_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = write_checks(tmp_path / "checks", {"cmp.py": COMPARISONS})
    pytest_hook = util._reprcompare
    assert pytest_hook is not None  # under pytest, pytest's own hook explains
    load(checks)
    assert util._reprcompare is pytest_hook
    monkeypatch.setattr(util, "_reprcompare", None)
    load(checks)
    assert util._reprcompare is _pytest_explain.explain


async def _results(checks: Path, settings: Settings) -> dict[str, TestResult]:
    loaded = load(checks)
    assert not loaded.errors
    recorder = await run_suites(settings, loaded.suites.values())
    return {name.split("/")[1]: r for name, r in by_name(recorder.tests).items()}


@pytest.mark.usefixtures("outside_pytest")
async def test_failed_comparisons_carry_pytests_explanation(
    tmp_path: Path, settings_for: SettingsFor
) -> None:
    checks = write_checks(tmp_path / "checks", {"cmp.py": COMPARISONS})
    results = await _results(checks, settings_for(secrets={"api_key": "s3cr3t-value"}))
    dicts = results["dicts"].message.splitlines()
    assert dicts[0] == "assert {'a': 1, 'confirmed': False} == {'a': 1, 'confirmed': True}"
    assert "  Differing items:" in dicts
    assert "  {'confirmed': False} != {'confirmed': True}" in dicts
    assert "  Full diff: (-: missing in left side, +: extra in left side)" in dicts
    assert "  -     'confirmed': True," in dicts
    assert "  +     'confirmed': False," in dicts
    assert "  Left contains one more item: 3" in results["lists"].message.splitlines()
    sets = results["sets"].message.splitlines()
    assert sets[sets.index("  Extra items in the left set:") + 1] == "  1"
    assert sets[sets.index("  Extra items in the right set:") + 1] == "  3"
    strings = results["strings"].message.splitlines()
    assert "  - status: paid" in strings
    assert "  + status: open" in strings
    assert "    total: 100%" in strings  # % survives the rewriter's %-formatting
    assert "  Differing attributes:" in results["dataclasses_"].message.splitlines()
    assert "    state: 'paid' != 'open'" in results["dataclasses_"].message.splitlines()
    models = results["models"].message.splitlines()
    assert "  - Invoice(id=1, status='open')" in models
    assert "  + Invoice(id=1, status='paid')" in models
    secret = results["secrets"].message
    assert "s3cr3t" not in secret
    assert secret.startswith("token differs\nassert {'token': ")
    assert "  Differing items:" in secret.splitlines()


@pytest.mark.usefixtures("outside_pytest")
async def test_a_multi_line_assert_is_shown_whole(
    tmp_path: Path, settings_for: SettingsFor
) -> None:
    checks = write_checks(tmp_path / "checks", {"cmp.py": COMPARISONS})
    result = (await _results(checks, settings_for()))["multi_line"]
    assert result.message.startswith("order not confirmed\nassert {'id': 7, 'confirmed': False}")
    assert "  Differing items:" in result.message.splitlines()
    assert result.traceback.splitlines()[-5:] == [
        f'  File "{checks / "cmp.py"}", line 65, in multi_line',
        "    assert got == {",
        '        "id": 7,',
        '        "confirmed": True,',
        '    }, "order not confirmed"',
    ]


@pytest.mark.usefixtures("outside_pytest")
async def test_long_explanations_are_bounded(tmp_path: Path, settings_for: SettingsFor) -> None:
    checks = write_checks(tmp_path / "checks", {"cmp.py": COMPARISONS})
    lines = (await _results(checks, settings_for()))["long_dicts"].message.splitlines()
    assert len(lines) == MESSAGE_MAX_LINES + 1
    assert lines[:4] == [
        "assert {0: 0, 1: 1, 2: 2, 3: 3, ...} == {0: 0, 1: -1,...2, 3: -3, ...}",
        "",
        "  Omitting 1 identical items",
        "  Differing items:",
    ]
    assert re.fullmatch(r"\.\.\. \(\d+ more lines\)", lines[-1])


def test_bounded_message_keeps_whole_lines_within_both_limits() -> None:
    assert bounded_message("short\nmessage  ") == "short\nmessage"
    many = "\n".join(f"line {i}" for i in range(30))
    assert bounded_message(many).splitlines()[-2:] == ["line 19", "... (10 more lines)"]
    wide = "\n".join("x" * 300 for _ in range(10))
    cut = bounded_message(wide).splitlines()
    assert cut[-1] == "... (4 more lines)"
    assert sum(len(line) + 1 for line in cut[:-1]) <= MESSAGE_MAX_CHARS
    assert bounded_message("y" * 5000) == "y" * MESSAGE_MAX_CHARS


@pytest.mark.slow
def test_run_once_prints_the_explanation(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"cmp.py": COMPARISONS})
    env = cli_env(tmp_path / "state", None, SYNTHETIC_SECRETS__API_KEY="s3cr3t-value")
    run = run_cli(["--checks", str(checks), "run", "--once"], env)
    assert run.returncode == 1, run.stderr
    report = run.stdout[run.stdout.index("cmp/dicts (failed)") :].splitlines()
    assert report[1:4] == [
        "assert {'a': 1, 'confirmed': False} == {'a': 1, 'confirmed': True}",
        "",
        "  Omitting 1 identical items",
    ]
    assert "  {'confirmed': False} != {'confirmed': True}" in report
    assert "  Left contains one more item: 3" in report
    assert any(line.startswith("... (") for line in report)
    assert "s3cr3t" not in run.stdout + run.stderr


HELPER = """
    def expect_created(status: int) -> None:
        created = 201
        assert status == created
"""

USES_HELPER = """
    from _statuses import expect_created

    from synthetic_exporter import Suite, T

    suite = Suite("shared")


    @suite.test
    def refused(t: T) -> None:
        expect_created(503)
"""


@pytest.mark.slow
def test_an_assert_in_a_shared_helper_explains_itself_in_run(tmp_path: Path) -> None:
    """A private module beside the check files is compiled as they are: with rewriting."""
    checks = write_checks(tmp_path / "checks", {"_statuses.py": HELPER, "shared.py": USES_HELPER})
    run = run_cli(["--checks", str(checks), "run", "--once"], cli_env(tmp_path / "state", None))
    assert run.returncode == 1, run.stderr
    assert "assert 503 == 201" in run.stdout, run.stdout


@pytest.mark.slow
def test_an_assert_in_a_shared_helper_explains_itself_under_pytest(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"_statuses.py": HELPER, "shared.py": USES_HELPER})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--synthetic", str(checks), "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path / "state", None),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "assert 503 == 201" in done.stdout, done.stdout
