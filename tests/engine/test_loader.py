"""The loader: check files in, suites and load errors (with file and line) out."""

from __future__ import annotations

from pathlib import Path

from synthetic_exporter.engine.loader import load, without_secret_names
from tests.conftest import write_checks

GOOD = """
from synthetic_exporter import Suite, T

suite = Suite("good")

@suite.test
async def works(t: T) -> None:
    pass
"""


def test_broken_files_and_suites_are_errors_and_the_rest_still_load(tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {
            "good.py": GOOD,
            "syntax.py": "x = (\n",
            "raises.py": "import os\n\nraise RuntimeError('no config')\n",
            "z_dupe.py": "from synthetic_exporter import Suite\n\nagain = Suite('good')\n",
            "unknown.py": "from synthetic_exporter import Suite\n\n"
            "orphan = Suite('orphan', depends_on=['nope'])\n"
            "child = Suite('child', depends_on=['orphan'])\n",
            "cycle.py": "from synthetic_exporter import Suite\n\n"
            "a = Suite('a', depends_on=['b'])\nb = Suite('b', depends_on=['a'])\n",
            "_helpers.py": "raise RuntimeError('private modules are not check files')\n",
        },
    )
    result = load(checks)
    assert list(result.suites) == ["good"]
    errors = {(Path(e.file).name, e.line): e.message for e in result.errors}
    assert errors == {
        ("syntax.py", 1): "SyntaxError: '(' was never closed (syntax.py, line 1)",
        ("raises.py", 3): "RuntimeError: no config",
        ("z_dupe.py", 3): f"duplicate suite name 'good' (first defined at {checks}/good.py:4)",
        ("unknown.py", 3): "suite 'orphan' depends on unknown or unloadable suite 'nope'",
        ("unknown.py", 4): "suite 'child' depends on unknown or unloadable suite 'orphan'",
        ("cycle.py", 3): "suite 'a' is on a dependency cycle",
        ("cycle.py", 4): "suite 'b' is on a dependency cycle",
    }


def test_invalid_definition_is_a_load_error_with_its_line(tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {"bad.py": "from synthetic_exporter import Suite\n\nSuite('x', interval='soon')\n"},
    )
    (error,) = load(checks).errors
    assert error.line == 3
    assert "invalid duration 'soon'" in error.message


def test_missing_checks_path_is_an_error(tmp_path: Path) -> None:
    (error,) = load(tmp_path / "absent").errors
    assert error.message == "checks path does not exist"


def test_plain_assert_explains_the_values(tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {
            "asserts.py": """
            class Response:
                status_code = 502

            def check() -> None:
                r = Response()
                assert r.status_code == 201
            """
        },
    )
    import sys

    from synthetic_exporter.engine.loader import load_file

    suites, error = load_file(checks / "asserts.py")
    assert error is None
    assert suites == []
    module = next(m for n, m in sys.modules.items() if n.startswith("synthetic_checks.asserts"))
    try:
        module.check()
    except AssertionError as exc:
        message = str(exc)
    assert message.splitlines()[0] == "assert 502 == 201"
    assert "where 502 = <" in message
    assert ".status_code" in message


def test_a_suite_is_loaded_once_from_the_file_that_defines_it(tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {
            "good.py": GOOD,
            "aliases.py": "from synthetic_exporter import Suite\n\n"
            "suite = signup = Suite('signup')\n",
            "reuses.py": "from synthetic_exporter import Suite\n\nimport good\n"
            "from good import suite as imported\n\nmine = Suite('mine')\n",
        },
    )
    import sys

    sys.path.insert(0, str(checks))
    try:
        result = load(checks)
    finally:
        sys.path.remove(str(checks))
    assert result.errors == ()
    assert sorted(result.suites) == ["good", "mine", "signup"]


def test_a_check_file_that_exits_at_import_is_a_load_error(tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path,
        {
            "exits.py": "raise SystemExit(3)\n",
            "interrupts.py": "raise KeyboardInterrupt\n",
            "fine.py": 'from synthetic_exporter import Suite\nsuite = Suite("fine")\n',
        },
    )
    loaded = load(checks)
    assert list(loaded.suites) == ["fine"]
    assert sorted((Path(e.file).name, e.line, e.message) for e in loaded.errors) == [
        ("exits.py", 1, "SystemExit: 3"),
        ("interrupts.py", 1, "KeyboardInterrupt: "),
    ]


def test_suites_named_after_a_secret_are_refused_with_their_dependents(tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path,
        {
            "named.py": """
                from synthetic_exporter import Suite, T

                leaky = Suite("tenant-hunter22")
                tagged = Suite("tagged", tags=["hunter22"])
                after = Suite("after", depends_on=["tenant-hunter22"])
                clean = Suite("clean")

                @clean.test
                async def uses_hunter22_in_its_name(t: T) -> None:
                    pass
            """,
        },
    )
    loaded = without_secret_names(load(checks), {"SYNTHETIC_SECRETS__KEY": "hunter22"})
    assert list(loaded.suites) == []
    messages = [e.message for e in loaded.errors]
    assert messages[:3] == [
        "suite 'tenant-***': a suite, tag or test name contains the value of"
        " SYNTHETIC_SECRETS__KEY; names are published, secrets must not be",
        "suite 'tagged': a suite, tag or test name contains the value of"
        " SYNTHETIC_SECRETS__KEY; names are published, secrets must not be",
        "suite 'clean': a suite, tag or test name contains the value of"
        " SYNTHETIC_SECRETS__KEY; names are published, secrets must not be",
    ]
    assert messages[3] == "suite 'after' depends on unknown or unloadable suite 'tenant-***'"
    assert not any("hunter22" in m for m in messages)


NO_T = """from synthetic_exporter import Suite

suite = Suite("no_t")


@suite.test
async def no_t() -> None:
    pass
"""


def test_a_test_without_t_is_a_load_error_with_file_and_line(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"x.py": NO_T, "good.py": GOOD})
    result = load(checks)
    assert list(result.suites) == ["good"]
    where = f"{checks / 'x.py'}:6"
    assert [str(e) for e in result.errors] == [
        f"{where}: DefinitionError: test 'no_t' at {where} must take one argument,"
        " the test context `t`"
    ]


UNREGISTERED = """from synthetic_exporter import Suite, T

checkout = Suite("checkout")


@checkout.test
async def test_registered(t: T) -> None:
    pass


async def test_forgotten(t: T) -> None:
    pass


def test_sync_forgotten(t: T) -> None:
    pass


def helper_test(t: T) -> None:
    pass


test_data = {"not": "a function"}
"""


def test_undecorated_test_functions_are_warnings_not_errors(tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {"x.py": UNREGISTERED, "bare.py": "def test_alone(t):\n    pass\n"},
    )
    result = load(checks)
    assert result.errors == ()
    assert list(result.suites) == ["checkout"]
    assert [str(w) for w in result.warnings] == [
        f"{checks / 'bare.py'}:1: warning: test_alone is not registered with a suite"
        " (decorate it with @<suite>.test)",
        f"{checks / 'x.py'}:11: warning: test_forgotten is not registered with a suite"
        " (decorate it with @checkout.test)",
        f"{checks / 'x.py'}:15: warning: test_sync_forgotten is not registered with a suite"
        " (decorate it with @checkout.test)",
    ]
    kept = without_secret_names(result, {})
    assert kept.warnings == result.warnings


def test_an_unknown_dependency_suggests_the_closest_loaded_name(tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {
            "a.py": "from synthetic_exporter import Suite\n\n"
            "accounts = Suite('accounts')\n"
            "billing = Suite('billing', depends_on=['acounts'])\n"
            "other = Suite('other', depends_on=['zzz'])\n",
        },
    )
    result = load(checks)
    assert sorted(e.message for e in result.errors) == [
        "suite 'billing' depends on unknown or unloadable suite 'acounts'"
        " (did you mean 'accounts'?)",
        "suite 'other' depends on unknown or unloadable suite 'zzz'",
    ]
