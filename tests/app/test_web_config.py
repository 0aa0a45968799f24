"""The web config file: TLS and basic auth, in the exporter-toolkit format."""

from __future__ import annotations

import ssl
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme

from synthetic_exporter.app.web_config import WebConfigError, load_web_config
from tests.conftest import cli_env, run_cli, start_agent, stop_process, write_checks

PASSWORD = "correct horse battery"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a server certificate and key, another key, a CA and a non-PEM file."""
    directory = tmp_path_factory.mktemp("pems")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    trustme.CA().issue_cert("127.0.0.1").private_key_pem.write_to_path(str(directory / "other.key"))
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    (directory / "notes.txt").write_text("not PEM\n")
    (directory / "sub").mkdir()
    return directory


def tls(cert: str, key: str, client_ca: str | None = None) -> str:
    text = f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
    return text + (f"  client_ca_file: {client_ca}\n" if client_ca else "")


def a_hash(password: str = PASSWORD) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (tls("a.crt", "a.key"), "tls_server_config.cert_file: no such file"),
        (tls("sub", "server.key"), "tls_server_config.cert_file: .*sub is a directory"),
        (tls("server.key", "server.key"), "cert_file: .*server.key holds no PEM certificate"),
        (tls("server.crt", "notes.txt"), "key_file: .*notes.txt holds no PEM private key"),
        (tls("server.crt", "other.key"), "other.key is not the key of the certificate in"),
        (tls("server.crt", "server.key", "notes.txt"), "client_ca_file: .*holds no PEM CA"),
        (tls("server.crt", "server.key", "none.crt"), "client_ca_file: no such file"),
        ("basic_auth_users:\n  alice: plain-text\n", "basic_auth_users.alice is not a bcrypt"),
        ("basic_auth_users:\n  alice: '$2b$10$abc'\n", "basic_auth_users.alice is not a bcrypt"),
        ("basic_auth_users:\n  alice: '$2b$99$" + "a" * 53 + "'\n", "is not a bcrypt hash"),
        ("basic_auth_users:\n  alice: '$2b$10$" + "!" * 53 + "'\n", "is not a bcrypt hash"),
        ("basic_auth_users:\n  alice: 5\n", "basic_auth_users.alice: Input should be a valid"),
        ("basic_auth_user:\n  alice: x\n", "basic_auth_user: Extra inputs are not permitted"),
        ("tls_server_config: [\n", "is not valid YAML at line 2, column 1"),
        ("", "is empty: give tls_server_config and/or basic_auth_users"),
        ("{}\n", "is empty"),
        ("basic_auth_users: {}\n", "configures neither TLS nor basic auth"),
        (
            "basic_auth_users:\n  a: x\nbasic_auth_users:\n  b: y\n",
            "is not valid YAML at line 3, column 1: duplicate key 'basic_auth_users'",
        ),
        ("tls_server_config:\n", "configures neither TLS nor basic auth"),
        ("- tls_server_config\n", "must be a YAML mapping"),
        ("just text\n", "must be a YAML mapping"),
    ],
)
def test_bad_web_configs_are_rejected(pems: Path, text: str, problem: str) -> None:
    path = pems / "web.yml"
    path.write_text(text)
    with pytest.raises(WebConfigError, match=problem) as error:
        load_web_config(path)
    assert "\n" not in str(error.value)


def test_unreadable_web_config_files_are_one_line(pems: Path) -> None:
    binary = pems / "binary.yml"
    binary.write_bytes(b"basic_auth_users:\n  \xff\xfe: x\n")
    with pytest.raises(WebConfigError, match=r"binary.yml is not UTF-8 text \(byte 20\)"):
        load_web_config(binary)
    with pytest.raises(WebConfigError, match="sub is a directory, not a file"):
        load_web_config(pems / "sub")
    with pytest.raises(WebConfigError, match=r"cannot read .*missing\.yml: No such file"):
        load_web_config(pems / "missing.yml")


def test_encrypted_key_is_refused_without_prompting(pems: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((pems / "server.key").read_bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (pems / "encrypted.key").write_bytes(encrypted)
    path = pems / "web.yml"
    path.write_text(tls("server.crt", "encrypted.key"))
    with pytest.raises(WebConfigError, match=r"encrypted\.key is encrypted"):
        load_web_config(path)


def test_a_good_config_loads_with_paths_relative_to_the_file(pems: Path) -> None:
    hashed = a_hash().replace("$2b$", "$2y$")
    path = pems / "web.yml"
    path.write_text(
        tls("server.crt", "server.key", "ca.crt") + f"basic_auth_users:\n  alice: '{hashed}'\n"
    )
    config = load_web_config(path)
    assert config.tls_server_config is not None
    assert config.tls_server_config.key_file == pems / "server.key"
    assert config.tls_server_config.client_ca_file == pems / "ca.crt"
    assert config.basic_auth_users == {"alice": hashed}


def test_bad_web_config_names_the_variable_and_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "basic_auth_users:\n  alice: nope\n")
    env = cli_env(tmp_path / "state", None, SYNTHETIC_WEB_CONFIG_FILE=str(config))
    run = run_cli(["--checks", str(write_checks(tmp_path / "checks", {})), "serve"], env)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "synthetic-exporter: invalid settings:",
        f"SYNTHETIC_WEB_CONFIG_FILE: {config}: basic_auth_users.alice is not a bcrypt hash"
        " (htpasswd -nBC 10 'alice')",
    ]


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
