"""``pytest --synthetic``: check files as pytest items, with the agent's semantics.

Each pytest run here is a real subprocess (pytester), with a real demo API as the target.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from tests.conftest import cli_env, run_cli, start_agent, stop_process, write_checks

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-plugin-value"

SHOP = """
    import os
    from pathlib import Path

    import anyio

    from synthetic_exporter import Suite, T

    signup = Suite("signup", tags=["smoke"], stop_on_failure=False)
    orders = Suite("orders", depends_on=["signup"])
    audit = Suite("audit", depends_on=["billing"])
    TRACE = Path(os.environ["CHECK_TRACE"])
    attempts = {"n": 0}


    def note(line: str) -> None:
        with TRACE.open("a") as f:
            f.write(line + "\\n")


    @signup.test
    async def reaches_the_api(t: T) -> None:
        t.cleanup(lambda: note("cleaned up"))
        r = await t.http.get("/delay/0")
        assert r.status_code == 200


    @signup.test
    def compares_orders(t: T) -> None:
        t.log("comparing the order")
        assert {"id": 7, "confirmed": False} == {"id": 7, "confirmed": True}


    @signup.test(retries=1)
    def flaky(t: T) -> None:
        attempts["n"] += 1
        assert attempts["n"] > 1, "first attempt fails"


    @signup.test(timeout=0.2)
    async def slow(t: T) -> None:
        await anyio.sleep(5)


    @signup.test
    def raises(t: T) -> None:
        raise KeyError("customer")


    @signup.test
    def leaks_no_secret(t: T) -> None:
        assert t.secret("api_key") == "something else"


    @orders.test
    def place_order(t: T) -> None:
        note("orders ran")


    @audit.test
    def audit_billing(t: T) -> None:
        note("audit ran")
"""

# Named like a pytest test file, and loaded after shop.py, yet audit (in shop.py) depends on it.
BILLING = """
    import os
    from pathlib import Path

    from synthetic_exporter import JanitorContext, Resource, Suite, T

    billing = Suite("billing", tags=["money"])


    def note(line: str) -> None:
        with Path(os.environ["CHECK_TRACE"]).open("a") as f:
            f.write(line + "\\n")


    @billing.janitor("invoice")
    def delete_invoice(j: JanitorContext, invoice: Resource) -> None:
        note(f"janitor deleted {invoice.id}")


    @billing.test
    def issue_invoice(t: T) -> None:
        t.track("invoice", "inv_1")
        note("billing ran")
"""

EXPECTED = {
    "signup/reaches_the_api": "passed",
    "signup/compares_orders": "failed",
    "signup/flaky": "flaky",
    "signup/slow": "timeout",
    "signup/raises": "error",
    "signup/leaks_no_secret": "failed",
    "orders/place_order": "skipped",
    "billing/issue_invoice": "passed",
    "audit/audit_billing": "passed",
}


@pytest.fixture
def checks(tmp_path: Path) -> Path:
    """The check files, in a directory of their own."""
    return write_checks(tmp_path / "checks", {"shop.py": SHOP, "test_billing.py": BILLING})


@pytest.fixture
def env(tmp_path: Path, demo_api: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The agent's settings, in the environment of this process and its subprocesses."""
    values = cli_env(
        tmp_path / "state",
        demo_api,
        SYNTHETIC_SECRETS__API_KEY=SECRET,
        CHECK_TRACE=str(tmp_path / "trace"),
    )
    for key in [k for k in os.environ if k.startswith("SYNTHETIC_")]:
        monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def run_pytest(pytester: pytest.Pytester, *args: str | Path) -> pytest.RunResult:
    """Run pytest in a subprocess (bounded), from pytester's directory."""
    return pytester.runpytest_subprocess(*args, timeout=120)


def junit_outcomes(path: Path) -> dict[str, str]:
    """Return ``suite/test`` -> the agent's outcome, from pytest's JUnit XML properties."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        suite = case.attrib["classname"].rsplit(".", 1)[-1]
        props = {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")}
        outcomes[f"{suite}/{case.attrib['name']}"] = props.get("outcome", "skipped")
    return outcomes


def test_pytest_runs_the_checks_with_the_agents_outcomes(
    pytester: pytest.Pytester, checks: Path, env: dict[str, str], tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    result = run_pytest(pytester, "--synthetic", checks, "-v", "-rA", f"--junitxml={junit}")
    output = result.stdout.str()
    assert result.parseoutcomes() == {"passed": 3, "failed": 4, "skipped": 1, "flaky": 1}
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert junit_outcomes(junit) == EXPECTED
    result.stdout.fnmatch_lines(
        [
            "*synthetic-exporter *: 4 suites, 9 tests from *checks (targets: default)",
            "*shop.py::signup::flaky FLAKY*",
            "*shop.py::signup::slow TIMEOUT*",
            "*shop.py::signup::raises ERROR*",
            "*shop.py::orders::place_order SKIPPED*",
            "*test_billing.py::billing::issue_invoice PASSED*",
            "*shop.py::audit::audit_billing PASSED*",
        ]
    )
    # Dependencies first, although billing's file comes after shop.py.
    assert output.index("billing::issue_invoice") < output.index("audit::audit_billing")
    lines = output.splitlines()
    assert "  Differing items:" in lines
    assert "  {'confirmed': False} != {'confirmed': True}" in lines
    assert "test timed out after 0.2s" in lines
    assert "KeyError: 'customer'" in lines
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *shop.py:55: dependency 'signup' failed"])
    assert any(line.endswith("INFO    comparing the order") for line in lines)
    assert SECRET not in output + result.stderr.str()
    trace = (tmp_path / "trace").read_text().splitlines()
    assert "cleaned up" in trace
    assert "orders ran" not in trace
    assert (
        trace.index("billing ran") < trace.index("janitor deleted inv_1") < trace.index("audit ran")
    )


def test_the_same_outcomes_under_run_once_and_serve(
    pytester: pytest.Pytester, checks: Path, env: dict[str, str], tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    run_pytest(pytester, "--synthetic", checks, f"--junitxml={junit}")
    report = tmp_path / "run.json"
    once = run_cli(["run", "--once", "--checks", str(checks), "--json", str(report)], env)
    assert once.returncode == 1, once.stderr
    from_once = {
        t["full_name"]: t["outcome"]
        for s in json.loads(report.read_text())["suites"]
        for t in s["tests"]
    }
    served = _served_outcomes(checks, tmp_path / "serve-state", env)
    assert junit_outcomes(junit) == from_once == served == EXPECTED
    assert "  Differing items:" in once.stdout.splitlines()


def _served_outcomes(checks: Path, state: Path, env: dict[str, str]) -> dict[str, str]:
    """Start ``serve`` on the checks; return every test's first outcome from the API."""
    extra = {k: v for k, v in env.items() if k.startswith(("SYNTHETIC_SECRETS", "CHECK_"))}
    agent = start_agent(checks, state, env["SYNTHETIC_TARGETS__DEFAULT__BASE_URL"], **extra)
    try:
        deadline = time.monotonic() + 30
        outcomes: dict[str, str] = {}
        while time.monotonic() < deadline and len(outcomes) < len(EXPECTED):
            body = httpx.get(f"{agent.url}/api/v1/results", timeout=5).json()
            outcomes = {t["full_name"]: t["outcome"] for s in body["suites"] for t in s["tests"]}
            compares = (
                next(
                    t for s in body["suites"] for t in s["tests"] if t["name"] == "compares_orders"
                )
                if "signup/compares_orders" in outcomes
                else None
            )
            time.sleep(0.2)
        assert compares is not None
        assert "  Differing items:" in compares["message"].splitlines()
        return outcomes
    finally:
        stop_process(agent.process)


def test_xdist_workers_keep_dependency_groups_together(
    pytester: pytest.Pytester, checks: Path, env: dict[str, str], tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    result = run_pytest(
        pytester, "--synthetic", checks, "-n", "2", "--dist", "loadscope", f"--junitxml={junit}"
    )
    assert result.parseoutcomes() == {"passed": 3, "failed": 4, "skipped": 1, "flaky": 1}
    assert junit_outcomes(junit) == EXPECTED
    trace = (tmp_path / "trace").read_text().splitlines()
    assert trace.count("billing ran") == 1, "each suite ran once, in one worker"
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["pytest-gw0", "pytest-gw1"]


def test_k_m_and_x_select_and_stop_as_in_pytest(
    pytester: pytest.Pytester, checks: Path, env: dict[str, str], tmp_path: Path
) -> None:
    by_keyword = run_pytest(pytester, "--synthetic", checks, "-k", "reaches or issue_invoice")
    by_keyword.assert_outcomes(passed=2)
    by_tag = run_pytest(pytester, "--synthetic", checks, "-m", "money", "--strict-markers")
    by_tag.assert_outcomes(passed=1)
    # audit alone: its dependency billing runs (whole, unreported), as under run --once -k.
    (tmp_path / "trace").unlink(missing_ok=True)
    dependent = run_pytest(pytester, "--synthetic", checks, "-k", "audit")
    dependent.assert_outcomes(passed=1)
    trace = (tmp_path / "trace").read_text().splitlines()
    assert trace == ["billing ran", "janitor deleted inv_1", "audit ran"]
    first = run_pytest(pytester, "--synthetic", checks, "-x")
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_without_the_option_the_plugin_does_nothing(
    pytester: pytest.Pytester, checks: Path, env: dict[str, str]
) -> None:
    result = run_pytest(pytester, checks)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # pytest's own collector found none
    assert "synthetic-exporter 0.1.0:" not in result.stdout.str()  # no header, no checks


def test_load_errors_are_collection_errors_and_mistakes_are_warnings(
    pytester: pytest.Pytester, env: dict[str, str], tmp_path: Path
) -> None:
    checks = write_checks(
        tmp_path / "broken",
        {
            "fine.py": """
                from synthetic_exporter import Suite, T

                fine = Suite("fine")


                @fine.test
                def works(t: T) -> None:
                    pass


                def test_forgotten(t: T) -> None:
                    pass
            """,
            "typo.py": """
                from synthetic_exporter import Suite, T

                typo = Suite("typo", depends_on=["fien"])


                @typo.test
                def never(t: T) -> None:
                    pass
            """,
        },
    )
    result = run_pytest(pytester, "--synthetic", checks, "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting*typo.py*",
            "*typo.py:4: suite 'typo' depends on unknown or unloadable suite 'fien'"
            " (did you mean 'fine'?)",
            "*fine.py:12: PytestCollectionWarning: test_forgotten is not registered with a suite*",
        ]
    )


def test_bad_settings_are_a_usage_error_naming_the_variable(
    pytester: pytest.Pytester, checks: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = run_pytest(pytester, f"--synthetic={checks / 'nowhere'}")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*nowhere: checks path does not exist"])
    monkeypatch.setenv("SYNTHETIC_INTERVAL", "often")
    result = run_pytest(pytester, "--synthetic", checks)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: synthetic-exporter: invalid settings:", "SYNTHETIC_INTERVAL: invalid duration*"]
    )


def test_subtests_are_reported_under_their_parent(
    pytester: pytest.Pytester, env: dict[str, str], tmp_path: Path
) -> None:
    checks = write_checks(
        tmp_path / "pages",
        {
            "pages.py": """
                from synthetic_exporter import Suite, T

                pages = Suite("pages")


                @pages.test
                async def every_page(t: T) -> None:
                    for name, path in (("found", "/delay/0"), ("missing", "/no-such-page")):

                        async def fetch(sub: T, path: str = path) -> None:
                            r = await sub.http.get(path)
                            assert r.status_code == 200

                        await t.run(name, fetch)
            """
        },
    )
    result = run_pytest(pytester, "--synthetic", checks)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "subtest 'missing' failed: assert 404 == 200",
            "*Captured subtests call*",
            "every_page/found PASSED",
            "every_page/missing FAILED assert 404 == 200",
        ]
    )


def test_ctrl_c_cancels_the_running_test_and_its_cleanups_run(
    pytester: pytest.Pytester, env: dict[str, str], tmp_path: Path
) -> None:
    checks = write_checks(
        tmp_path / "long",
        {
            "long.py": """
                import os
                from pathlib import Path

                import anyio

                from synthetic_exporter import Suite, T

                TRACE = Path(os.environ["CHECK_TRACE"])
                long = Suite("long")


                @long.test(timeout=60)
                async def waits(t: T) -> None:
                    t.cleanup(lambda: TRACE.write_text("cleaned up\\n"))
                    TRACE.write_text("started\\n")
                    await anyio.sleep(60)
            """
        },
    )
    trace = tmp_path / "trace"
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--synthetic", str(checks), "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not trace.exists():
            time.sleep(0.05)
        assert trace.read_text() == "started\n"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        stop_process(process)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert trace.read_text() == "cleaned up\n"
