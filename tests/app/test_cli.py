"""The real CLI as a subprocess, on check files in a temp dir, against the demo API on 127.0.0.1."""

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

OUTCOMES = """
from __future__ import annotations

import anyio
from synthetic_exporter import Suite, T

suite = Suite("outcomes", stop_on_failure=False)
calls = {"flaky": 0}


@suite.test
async def passes(t: T) -> None:
    r = await t.http.get("/health")
    assert r.status_code == 200


@suite.test
async def wrong_status(t: T) -> None:
    r = await t.http.get("/health")
    assert r.status_code == 201


@suite.test
async def crashes(t: T) -> None:
    {}["missing"]


@suite.test(timeout=0.3)
async def hangs(t: T) -> None:
    await t.http.get("/delay/5000")


@suite.test
async def skips(t: T) -> None:
    t.skip("feature flag off")


@suite.test(retries=1)
async def flaky(t: T) -> None:
    calls["flaky"] += 1
    assert calls["flaky"] > 1, "cold cache"
"""

CHAIN = """
from synthetic_exporter import Suite, T

signup = Suite("signup")
invoices = Suite("invoices", depends_on=["signup"])
payments = Suite("payments", depends_on=["invoices"])


@signup.test
async def sign_up(t: T) -> None:
    r = await t.http.get("/delay/1")
    assert r.json() == {"delayed_ms": 2}


@invoices.test
async def issue(t: T) -> None:
    pass


@payments.test
async def pay(t: T) -> None:
    pass
"""

CUSTOMER = """
from __future__ import annotations

import os
import uuid
from pathlib import Path

import anyio
from synthetic_exporter import JanitorContext, Resource, Suite, T

suite = Suite("customers", timeout="60s")


@suite.janitor("customer")
async def delete_customer(j: JanitorContext, r: Resource) -> None:
    resp = await j.http.delete(f"/customers/{r.id}")
    assert resp.status_code in (204, 404), resp.text


@suite.test(timeout=os.environ.get("CHECK_TIMEOUT", "30s"))
async def create_then_wait(t: T) -> None:
    email = f"synthetic+{uuid.uuid4().hex}@example.com"
    r = await t.http.post(
        "/customers", json={"email": email, "name": "Cli", "password": "password123"}
    )
    assert r.status_code == 201, r.text
    customer_id = r.json()["id"]
    if os.environ.get("CHECK_MODE") == "track":
        t.track("customer", customer_id)
    else:
        t.cleanup(lambda: t.http.delete(f"/customers/{customer_id}"))
    Path(os.environ["CHECK_ID_FILE"]).write_text(customer_id)
    await anyio.sleep(float(os.environ.get("CHECK_SLEEP", "0")))
"""


def customer_exists(demo_api: str, customer_id: str) -> bool:
    """Ask the demo API whether a customer still exists."""
    return httpx.get(f"{demo_api}/admin/customers/{customer_id}").status_code == 200


def wait_for_file(path: Path, process: subprocess.Popen[str], seconds: float = 20) -> str:
    """Wait (bounded) until a check has written ``path``; return its content."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written in {seconds}s")


def test_run_once_reports_every_outcome(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"outcomes.py": OUTCOMES})
    junit, results = tmp_path / "junit.xml", tmp_path / "results.json"
    env = cli_env(tmp_path / "state", demo_api)
    args = ["--checks", str(checks), "run", "--once", "--junit-xml", str(junit)]
    run = run_cli([*args, "--json", str(results)], env)
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    for expected in (
        "outcomes/passes PASSED",
        "outcomes/wrong_status FAILED",
        "outcomes/crashes ERROR",
        "outcomes/hangs TIMEOUT",
        "outcomes/skips SKIPPED",
        "outcomes/flaky FLAKY",
    ):
        assert any(line.startswith(expected) for line in lines), run.stdout
    assert "assert 200 == 201" in run.stdout
    assert "+  where 200 = <Response [200 OK]>.status_code" in run.stdout
    assert 'outcomes.py", line 20, in wrong_status' in run.stdout
    assert "KeyError: 'missing'" in run.stdout
    assert lines[-1].startswith("=")
    assert "1 passed, 1 flaky, 1 failed, 1 error, 1 timeout, 1 skipped in" in lines[-1]

    logged = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    failures = [r for r in logged if r.get("test") == "wrong_status"]
    assert len(failures) == 1
    (failure,) = failures
    assert failure["level"] == "ERROR"
    assert failure["suite"] == "outcomes"
    assert failure["outcome"] == "failed"
    assert failure["duration_seconds"] > 0
    assert len(failure["run_id"]) == 12
    assert "assert 200 == 201" in failure["message"]
    assert {r.get("test") for r in logged if r["level"] == "ERROR"} == {
        "wrong_status",
        "crashes",
        "hangs",
    }

    data = json.loads(results.read_text())
    tests = {t["name"]: t for s in data["suites"] for t in s["tests"]}
    assert tests["hangs"]["outcome"] == "timeout"
    assert tests["hangs"]["message"] == "test timed out after 0.3s"
    assert tests["hangs"]["duration_seconds"] == pytest.approx(0.3, abs=0.1)
    assert tests["flaky"]["attempts"] == 2
    assert tests["skips"]["message"] == "feature flag off"

    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "1", "2")


def test_failed_dependency_skips_dependents_transitively(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"chain.py": CHAIN})
    results = tmp_path / "results.json"
    env = cli_env(tmp_path / "state", demo_api)
    run = run_cli(["--checks", str(checks), "run", "--once", "--json", str(results)], env)
    assert run.returncode == 1
    assert "invoices/issue SKIPPED [0 ms] (dependency 'signup' failed)" in run.stdout
    suites = {s["suite"]: s for s in json.loads(run_json(results))["suites"]}
    assert suites["payments"]["skip_reason"] == (
        "dependency 'invoices' was skipped: dependency 'signup' failed"
    )
    assert "assert {'delayed_ms': 1} == {'delayed_ms': 2}" in run.stdout


def run_json(path: Path) -> str:
    """Return the JSON a run wrote."""
    return path.read_text()


def test_cleanup_runs_after_a_timeout(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"customers.py": CUSTOMER})
    id_file = tmp_path / "id"
    env = cli_env(
        tmp_path / "state",
        demo_api,
        CHECK_ID_FILE=str(id_file),
        CHECK_SLEEP="30",
        CHECK_TIMEOUT="0.5s",
    )
    run = run_cli(["--checks", str(checks), "run", "--once"], env)
    assert run.returncode == 1
    assert "customers/create_then_wait TIMEOUT" in run.stdout
    assert not customer_exists(demo_api, id_file.read_text())


def test_sync_test_does_not_skew_async_latency(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {
            "timing.py": """
            import threading
            import time

            import anyio
            from synthetic_exporter import Suite, T

            blocking = Suite("blocking")
            latency = Suite("latency")
            sleeping = threading.Event()

            @blocking.test
            def sleeps(t: T) -> None:
                sleeping.set()
                time.sleep(1)

            @latency.test
            async def wait_for_the_blocker(t: T) -> None:
                with anyio.fail_after(5):
                    while not sleeping.is_set():
                        await anyio.sleep(0.005)

            @latency.test
            async def fetch_50ms(t: T) -> None:
                r = await t.http.get("/delay/50")
                assert r.status_code == 200
            """
        },
    )
    results = tmp_path / "results.json"
    env = cli_env(tmp_path / "state", demo_api)
    run = run_cli(["--checks", str(checks), "run", "--once", "--json", str(results)], env)
    assert run.returncode == 0, run.stdout + run.stderr
    tests = {t["name"]: t for s in json.loads(results.read_text())["suites"] for t in s["tests"]}
    sleeps, fetch = tests["sleeps"], tests["fetch_50ms"]
    assert sleeps["duration_seconds"] == pytest.approx(1.0, abs=0.2)
    # The fetch ran while the sync test slept in its worker thread, and measured 50 ms.
    assert sleeps["started_at"] < fetch["started_at"] < fetch["ended_at"] < sleeps["ended_at"]
    assert 0.05 <= fetch["duration_seconds"] < 0.08


def test_load_errors_are_reported_and_working_suites_still_run(
    tmp_path: Path, demo_api: str
) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {
            "ok.py": "from synthetic_exporter import Suite, T\n\nsuite = Suite('ok')\n\n\n"
            "@suite.test\nasync def fine(t: T) -> None:\n    pass\n",
            "broken.py": "from synthetic_exporter import Suite\n\nimport does_not_exist\n",
        },
    )
    env = cli_env(tmp_path / "state", demo_api)
    run = run_cli(["--checks", str(checks), "run", "--once"], env)
    assert run.returncode == 2
    assert "ok/fine PASSED" in run.stdout
    assert f"{checks}/broken.py:3: ModuleNotFoundError: No module named 'does_not_exist'" in (
        run.stdout
    )
    validate = run_cli(["--checks", str(checks), "validate"], env)
    assert validate.returncode == 1
    assert "broken.py:3" in validate.stderr
    assert "1 suite, 1 test loaded, 1 error" in validate.stdout


def test_list_shows_suites_tests_dependencies_and_intervals(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"chain.py": CHAIN})
    run = run_cli(["--checks", str(checks), "list"], cli_env(tmp_path / "state", None))
    assert run.returncode == 0
    assert "invoices (every 300s depends on signup)" in run.stdout
    assert "  payments/pay" in run.stdout


def test_global_options_are_accepted_after_the_subcommand(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"chain.py": CHAIN})
    env = cli_env(tmp_path / "state", None)
    after = run_cli(["list", "--checks", str(checks)], env)
    assert after.returncode == 0, after.stderr
    assert "  payments/pay" in after.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    both = run_cli(["--checks", str(empty), "list", "--checks", str(checks)], env)
    assert "  payments/pay" in both.stdout  # the later one wins, as argparse does


def test_nothing_collected_exits_5_as_pytest(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = cli_env(tmp_path / "state", None)
    run = run_cli(["run", "--once", "--checks", str(empty)], env)
    assert run.returncode == 5, run.stdout + run.stderr
    assert "no tests ran in" in run.stdout.splitlines()[-1]
    validate = run_cli(["validate", "--checks", str(empty)], env)
    assert "0 suites, 0 tests loaded, 0 errors" in validate.stdout


def test_run_once_removes_artifacts_past_the_history_retention(tmp_path: Path) -> None:
    """No history keeps run --once's runs: their artifacts go by SYNTHETIC_HISTORY_RETENTION."""
    empty = tmp_path / "empty"
    empty.mkdir()
    kept = tmp_path / "state" / "artifacts"
    for run_id, age_days in (("old", 8), ("recent", 6)):
        (kept / run_id / "dashboard").mkdir(parents=True)
        (kept / run_id / "dashboard" / "trace.zip").write_bytes(b"PK")
        then = time.time() - age_days * 86400
        os.utime(kept / run_id, (then, then))
    run = run_cli(["run", "--once", "--checks", str(empty)], cli_env(tmp_path / "state", None))
    assert run.returncode == 5, run.stdout + run.stderr
    assert sorted(p.name for p in kept.iterdir()) == ["recent"]
    env = cli_env(tmp_path / "state", None, SYNTHETIC_HISTORY_RETENTION="5d")
    assert run_cli(["run", "--once", "--checks", str(empty)], env).returncode == 5
    assert list(kept.iterdir()) == []


SELECTION = """
from synthetic_exporter import Suite, T

accounts = Suite("accounts", tags=["smoke"])
checkout = Suite("checkout", depends_on=["accounts"], tags=["billing"])
search = Suite("search", tags=["smoke"])


@accounts.test
async def sign_up(t: T) -> None:
    r = await t.http.get("/delay/1")
    assert r.status_code == 200


@checkout.test
async def pay_by_card(t: T) -> None:
    pass


@checkout.test
async def refund(t: T) -> None:
    t.log("refunding order 42")
    assert 1 == 2


@search.test
async def query(t: T) -> None:
    pass
"""


def outcome_lines(stdout: str) -> list[str]:
    """Return the live ``suite/test OUTCOME`` lines, without their durations, sorted."""
    return sorted(line.split(" [")[0] for line in stdout.splitlines() if "/" in line[:40])


def test_k_and_m_select_tests_and_dependencies_still_run(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"selection.py": SELECTION})
    env = cli_env(tmp_path / "state", demo_api)
    run = run_cli(["run", "--once", "--checks", str(checks), "-k", "CARD or query"], env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert outcome_lines(run.stdout) == [
        "accounts/sign_up PASSED",  # checkout's dependency
        "checkout/pay_by_card PASSED",
        "search/query PASSED",
    ]
    tagged = run_cli(["run", "--checks", str(checks), "-m", "smoke and not billing"], env)
    assert outcome_lines(tagged.stdout) == ["accounts/sign_up PASSED", "search/query PASSED"]
    by_tag = run_cli(["run", "--checks", str(checks), "-k", "billing and not pay"], env)
    assert by_tag.returncode == 1
    assert "checkout/refund FAILED" in by_tag.stdout
    assert "checkout/pay_by_card" not in by_tag.stdout


def test_a_selection_that_matches_nothing_exits_5(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"selection.py": SELECTION})
    env = cli_env(tmp_path / "state", demo_api)
    run = run_cli(["run", "--checks", str(checks), "-k", "nothing_like_this"], env)
    assert run.returncode == 5, run.stdout + run.stderr
    assert "no tests ran in" in run.stdout
    bad = run_cli(["run", "--checks", str(checks), "-m", "smoke and"], env)
    assert bad.returncode == 2
    assert "-m 'smoke and': unexpected end of expression" in bad.stderr


def test_x_stops_after_the_first_failure(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"selection.py": SELECTION})
    env = cli_env(tmp_path / "state", demo_api)
    results = tmp_path / "results.json"
    both = ["run", "--checks", str(checks), "--suite", "checkout", "--suite", "search"]
    run = run_cli([*both, "-x", "--json", str(results)], env)
    assert run.returncode == 1, run.stdout + run.stderr
    suites = {s["suite"]: s for s in json.loads(results.read_text())["suites"]}
    assert suites["checkout"]["outcome"] == "failed"
    assert suites["search"]["skip_reason"] == "stopped after the first failure (-x)"
    assert "search/query SKIPPED [0 ms] (stopped after the first failure (-x))" in run.stdout
    assert "search/query PASSED" in run_cli(both, env).stdout


def test_q_v_and_color_change_the_live_output(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"selection.py": SELECTION})
    env = cli_env(tmp_path / "state", demo_api)
    args = ["run", "--checks", str(checks), "--suite", "checkout"]
    plain = run_cli(args, env)
    assert "checkout/pay_by_card PASSED" in plain.stdout
    assert "\x1b[" not in plain.stdout  # a pipe: no colour
    captured = plain.stdout[plain.stdout.index("assert 1 == 2") :]
    assert " Captured log " in captured
    assert "INFO    refunding order 42" in captured
    quiet = run_cli([*args, "-q"], env)
    assert "PASSED" not in quiet.stdout
    assert "checkout/refund FAILED" in quiet.stdout
    verbose = run_cli([*args, "-v"], env)
    assert "checkout/refund FAILED" in verbose.stdout
    assert "\n    assert 1 == 2\n" in verbose.stdout
    coloured = run_cli([*args, "--color=yes"], {**env, "NO_COLOR": "1"})
    assert "checkout/refund \x1b[31mFAILED\x1b[0m" in coloured.stdout


def test_env_file_sets_settings_the_environment_wins(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"chain.py": CHAIN})
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"# shared with other tools\nSYNTHETIC_CHECKS_PATH={checks}\nSYNTHETIC_INTERVAL=7s\n"
        "DATABASE_URL=postgres://elsewhere\nSYNTHETIC_INTERVALL=5s\n"
    )
    env = cli_env(tmp_path / "state", None)
    run = run_cli(["list", "--env-file", str(env_file)], env)
    assert run.returncode == 0, run.stderr
    assert "signup (every 7s)" in run.stdout
    assert "SYNTHETIC_INTERVALL" in run.stderr  # the file's typo is warned about too
    wins = run_cli(["--env-file", str(env_file), "list"], {**env, "SYNTHETIC_INTERVAL": "9s"})
    assert "signup (every 9s)" in wins.stdout
    missing = run_cli(["list", "--env-file", str(tmp_path / "nope.env")], env)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"synthetic-exporter: error: --env-file: {tmp_path / 'nope.env'}: no such file"
    ]


def test_bad_settings_name_the_variable_and_exit_2(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "state", None, SYNTHETIC_INTERVAL="soon")
    run = run_cli(["list"], env)
    assert run.returncode == 2
    assert "SYNTHETIC_INTERVAL: invalid duration 'soon'" in run.stderr


def test_unknown_suite_is_a_usage_error(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"chain.py": CHAIN})
    run = run_cli(
        ["--checks", str(checks), "run", "--once", "--suite", "nope"],
        cli_env(tmp_path / "state", None),
    )
    assert run.returncode == 2
    assert "unknown suite 'nope'" in run.stderr


def start_cli(checks: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``run --once`` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "run", "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str]) -> None:
    """Kill a process if it still runs, and collect its output (closing its pipes)."""
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


def test_sigterm_cancels_running_tests_runs_cleanups_and_exits_0(
    tmp_path: Path, demo_api: str
) -> None:
    checks = write_checks(tmp_path / "checks", {"customers.py": CUSTOMER})
    id_file = tmp_path / "id"
    env = cli_env(tmp_path / "state", demo_api, CHECK_ID_FILE=str(id_file), CHECK_SLEEP="60")
    process = start_cli(checks, env)
    try:
        customer_id = wait_for_file(id_file, process)
        assert customer_exists(demo_api, customer_id)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=15)
        assert process.returncode == 0
        assert time.monotonic() - started < 5
        assert "interrupted" in stdout
        assert not customer_exists(demo_api, customer_id)
    finally:
        finish(process)


def test_kill_9_mid_suite_then_restart_sweeps_tracked_resources(
    tmp_path: Path, demo_api: str
) -> None:
    checks = write_checks(tmp_path / "checks", {"customers.py": CUSTOMER})
    state = tmp_path / "state"
    first_id, second_id = tmp_path / "first", tmp_path / "second"
    env = cli_env(state, demo_api, CHECK_MODE="track", CHECK_ID_FILE=str(first_id))
    process = start_cli(checks, {**env, "CHECK_SLEEP": "60"})
    try:
        customer_id = wait_for_file(first_id, process)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        finish(process)
    assert customer_exists(demo_api, customer_id)

    rerun = run_cli(
        ["--checks", str(checks), "run", "--once"], {**env, "CHECK_ID_FILE": str(second_id)}
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert not customer_exists(demo_api, customer_id)
    assert not customer_exists(demo_api, second_id.read_text())
    assert "found 1 leftover test resources" in rerun.stderr


def test_a_state_dir_serves_one_agent_at_a_time(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", {"customers.py": CUSTOMER})
    id_file = tmp_path / "id"
    env = cli_env(tmp_path / "state", demo_api, CHECK_ID_FILE=str(id_file), CHECK_SLEEP="30")
    process = start_cli(checks, env)
    try:
        wait_for_file(id_file, process)
        second = run_cli(["--checks", str(checks), "run", "--once"], env)
        assert second.returncode == 2
        assert f"SYNTHETIC_STATE_DIR: {tmp_path / 'state'} is in use by another agent process" in (
            second.stderr
        )
        assert f"(pid {process.pid})" in second.stderr
    finally:
        finish(process)


@pytest.mark.parametrize(
    ("option", "path", "problem"),
    [
        ("--junit-xml", "no-dir/junit.xml", "no-dir/junit.xml: directory {tmp}/no-dir does not"),
        ("--json", "checks", "{tmp}/checks is a directory"),
    ],
)
def test_report_paths_are_checked_before_the_run(
    tmp_path: Path, option: str, path: str, problem: str
) -> None:
    checks = write_checks(tmp_path / "checks", {"chain.py": CHAIN})
    args = ["--checks", str(checks), "run", "--once", option, str(tmp_path / path)]
    run = run_cli(args, cli_env(tmp_path / "state", None))
    assert run.returncode == 2
    assert run.stdout == ""  # nothing ran
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"synthetic-exporter: error: {option}: ")
    assert problem.format(tmp=tmp_path) in line


def test_secrets_never_reach_names_or_messages(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(
        tmp_path / "checks",
        {
            "leaky.py": """
                from synthetic_exporter import Suite, T

                named = Suite("tenant-hunter22")
                plain = Suite("plain")

                @plain.test
                async def status_error(t: T) -> None:
                    r = await t.http.get("/no-such-path")
                    r.raise_for_status()
            """,
        },
    )
    base = demo_api.replace("http://", "http://user:pa55w0rd@")
    env = cli_env(tmp_path / "state", base, SYNTHETIC_SECRETS__KEY="hunter22")

    validate = run_cli(["--checks", str(checks), "validate"], env)
    assert validate.returncode == 1
    assert "contains the value of SYNTHETIC_SECRETS__KEY" in validate.stderr
    assert "hunter22" not in validate.stderr + validate.stdout

    run = run_cli(["--checks", str(checks), "run", "--once", "--suite", "plain"], env)
    assert run.returncode == 2  # a load error, and the run itself
    assert "404 Not Found" in run.stdout
    assert "pa55w0rd" not in run.stdout + run.stderr
    assert "hunter22" not in run.stdout + run.stderr


MISTAKES = {
    "ok.py": "from synthetic_exporter import Suite, T\n\naccounts = Suite('accounts')\n\n\n"
    "@accounts.test\nasync def fine(t: T) -> None:\n    pass\n\n\n"
    "async def test_forgotten(t: T) -> None:\n    pass\n",
    "no_t.py": "from synthetic_exporter import Suite\n\nsuite = Suite('no_t')\n\n\n"
    "@suite.test\nasync def no_t() -> None:\n    pass\n",
    "typo.py": "from synthetic_exporter import Suite\n\n"
    "billing = Suite('billing', depends_on=['acounts'])\n",
}
NO_T_ERROR = "DefinitionError: test 'no_t' at {checks}/no_t.py:6 must take one argument"
SETTING_WARNING = (
    "synthetic-exporter: warning: SYNTHETIC_INTERVALL is not a setting, ignored"
    " (did you mean SYNTHETIC_INTERVAL?)"
)


def test_validate_reports_mistakes_with_file_and_line_and_exits_1(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", MISTAKES)
    env = cli_env(tmp_path / "state", None, SYNTHETIC_INTERVALL="5s")
    validate = run_cli(["--checks", str(checks), "validate"], env)
    assert validate.returncode == 1
    lines = validate.stderr.splitlines()
    assert lines[0] == SETTING_WARNING
    assert f"{checks}/no_t.py:6: {NO_T_ERROR.format(checks=checks)}, the test context `t`" in lines
    assert (
        f"{checks}/typo.py:3: suite 'billing' depends on unknown or unloadable suite 'acounts'"
        " (did you mean 'accounts'?)" in lines
    )
    assert (
        f"{checks}/ok.py:11: warning: test_forgotten is not registered with a suite"
        " (decorate it with @accounts.test)" in lines
    )
    assert "1 suite, 1 test loaded, 2 errors" in validate.stdout


def test_run_reports_the_same_mistakes_and_logs_the_warnings(tmp_path: Path, demo_api: str) -> None:
    checks = write_checks(tmp_path / "checks", MISTAKES)
    env = cli_env(tmp_path / "state", demo_api, SYNTHETIC_INTERVALL="5s")
    run = run_cli(["--checks", str(checks), "run", "--once"], env)
    assert run.returncode == 2
    assert "accounts/fine PASSED" in run.stdout
    assert NO_T_ERROR.format(checks=checks) in run.stdout + run.stderr
    assert run.stderr.splitlines()[0] == SETTING_WARNING
    logged = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert any("test_forgotten is not registered" in record["message"] for record in logged)


def test_serve_reports_the_same_mistakes(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", MISTAKES)
    agent = start_agent(checks, tmp_path / "state", None)
    try:
        body = httpx.get(f"{agent.url}/healthz", timeout=5).json()
    finally:
        stop_process(agent.process)
    assert any(NO_T_ERROR.format(checks=checks) in e for e in body["load_errors"])


FORGOTTEN_AWAIT = """
from synthetic_exporter import Suite, T

suite = Suite("awaits", stop_on_failure=False)


@suite.test
async def forgot_await(t: T) -> None:
    r = t.http.get("/health")
    assert r.status_code == 200


@suite.test
async def forgot_await_then_index(t: T) -> None:
    r = t.http.get("/health")
    r["status"]


@suite.test
async def still_runs(t: T) -> None:
    r = await t.http.get("/health")
    assert r.status_code == 200
"""


@pytest.mark.parametrize("warnings", ["default", "error"])
def test_a_forgotten_await_is_explained_and_crashes_nothing(
    tmp_path: Path, demo_api: str, warnings: str
) -> None:
    checks = write_checks(tmp_path / "checks", {"awaits.py": FORGOTTEN_AWAIT})
    env = cli_env(tmp_path / "state", demo_api, PYTHONWARNINGS=warnings)
    report = tmp_path / "r.json"
    run = run_cli(["--checks", str(checks), "run", "--once", "--json", str(report)], env)
    assert run.returncode == 1, run.stderr
    tests = {t["name"]: t for s in json.loads(report.read_text())["suites"] for t in s["tests"]}
    assert tests["forgot_await"]["message"] == (
        "AttributeError: 'coroutine' object has no attribute 'status_code'"
        " (a coroutine: did you forget `await`?)"
    )
    assert tests["forgot_await_then_index"]["message"] == (
        "TypeError: 'coroutine' object is not subscriptable (a coroutine: did you forget `await`?)"
    )
    assert tests["still_runs"]["outcome"] == "passed"
    # Python's own notice stays (a warning, or with -W error an "Exception ignored" report).
    assert "RuntimeWarning: coroutine 'AsyncClient.get' was never awaited" in run.stderr
