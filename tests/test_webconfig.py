"""The web config file: TLS and basic auth, in the exporter-toolkit format."""

from __future__ import annotations

import ssl
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme

from synthetic_exporter.webconfig import WebConfigError, load_web_config
from tests.conftest import cli_env, run_cli, start_agent, stop_process, write_checks

PASSWORD = "correct horse battery"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "no such file"),
        ("basic_auth_users:\n  alice: plain-text\n", "not a bcrypt hash"),
        ("basic_auth_user:\n  alice: x\n", "basic_auth_user: Extra inputs are not permitted"),
        ("tls_server_config: [\n", "cannot read"),
    ],
)
def test_bad_web_configs_are_rejected(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(WebConfigError, match=problem):
        load_web_config(write_config(tmp_path, text))


def test_bad_web_config_names_the_variable_and_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "basic_auth_users:\n  alice: nope\n")
    env = cli_env(tmp_path / "state", None, SYNTHETIC_WEB_CONFIG_FILE=str(config))
    run = run_cli(["--checks", str(write_checks(tmp_path / "checks", {})), "serve"], env)
    assert run.returncode == 2
    assert "SYNTHETIC_WEB_CONFIG_FILE:" in run.stderr
    assert "not a bcrypt hash" in run.stderr


@pytest.mark.slow
def test_agent_serves_tls_and_asks_for_basic_auth(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    config = write_config(
        tmp_path,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n"
        f"basic_auth_users:\n  prometheus: '{hashed.replace('$2b$', '$2y$')}'\n",
    )
    checks = write_checks(tmp_path / "checks", {})
    agent = start_agent(checks, tmp_path / "state", None, SYNTHETIC_WEB_CONFIG_FILE=str(config))
    try:
        assert agent.url.startswith("https://")
        trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with httpx.Client(verify=trusted) as client:
            assert client.get(f"{agent.url}/metrics").status_code == 401
            wrong = client.get(f"{agent.url}/metrics", auth=("prometheus", "nope"))
            assert wrong.status_code == 401
            assert wrong.headers["www-authenticate"] == 'Basic realm="synthetic-exporter"'
            for _ in range(2):  # the second time from the cache of checked passwords
                ok = client.get(f"{agent.url}/metrics", auth=("prometheus", PASSWORD))
                assert ok.status_code == 200
                assert "synthetic_exporter_build_info" in ok.text
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{agent.url}/metrics")  # not trusted without the CA
    finally:
        stop_process(agent.process)
