"""Every start-up and configuration error: the real CLI, one line naming the setting, exit 2.

Each case runs ``synthetic-exporter`` in a subprocess with one bad setting, as an operator would,
and asserts: exit status 2, stderr is exactly the header line and one line naming the variable
(or file, or option), no traceback, and no secret or URL password anywhere in the output. Log
records (JSON lines) of the start-up may come before, at INFO at most.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from tests.conftest import cli_env, run_cli, write_checks

pytestmark = pytest.mark.slow

HEADER = "synthetic-exporter: invalid settings:"
URL_PASSWORD = "hunter2-url-password"
SECRET = "hunter2-secret-value"
CHECK = """
from synthetic_exporter import Suite, T

suite = Suite("ok")


@suite.test
async def fine(t: T) -> None:
    pass
"""


@dataclass(frozen=True)
class Case:
    """One bad setting, the commands it is tried with, and the line expected on stderr."""

    variable: str
    fragment: str
    env: dict[str, str] = field(default_factory=dict)
    commands: tuple[str, ...] = ("list",)
    args: tuple[str, ...] = ()
    command_args: tuple[str, ...] = ()


CASES: dict[str, Case] = {
    "interval": Case("SYNTHETIC_INTERVAL", "invalid duration 'abc'", {"SYNTHETIC_INTERVAL": "abc"}),
    "concurrency": Case(
        "SYNTHETIC_CONCURRENCY",
        "greater than or equal to 1",
        {"SYNTHETIC_CONCURRENCY": "0"},
        ("list", "run", "serve", "validate", "demo"),
    ),
    "log level": Case("SYNTHETIC_LOG_LEVEL", "Input should be", {"SYNTHETIC_LOG_LEVEL": "LOUD"}),
    "log format": Case("SYNTHETIC_LOG_FORMAT", "Input should be", {"SYNTHETIC_LOG_FORMAT": "xml"}),
    "targets json": Case("SYNTHETIC_TARGETS", "expected JSON", {"SYNTHETIC_TARGETS": "{"}),
    "labels json": Case("SYNTHETIC_LABELS", "expected JSON", {"SYNTHETIC_LABELS": "{bad"}),
    "labels list": Case("SYNTHETIC_LABELS", "valid dictionary", {"SYNTHETIC_LABELS": "[1]"}),
    "reserved label": Case("SYNTHETIC_LABELS", "reserved", {"SYNTHETIC_LABELS__SUITE": "x"}),
    "shard": Case(
        "SYNTHETIC_SHARD", "need 0 <= i < N", {"SYNTHETIC_SHARD": "3/2"}, ("list", "serve")
    ),
    "port 70000": Case(
        "SYNTHETIC_LISTEN", "port must be 0-65535", {"SYNTHETIC_LISTEN": "127.0.0.1:70000"}
    ),
    "listen no port": Case(
        "SYNTHETIC_LISTEN", "invalid listen address", {"SYNTHETIC_LISTEN": "localhost"}
    ),
    "empty environment": Case(
        "SYNTHETIC_ENVIRONMENT", "must not be empty", {"SYNTHETIC_ENVIRONMENT": ""}
    ),
    "environment newline": Case(
        "SYNTHETIC_ENVIRONMENT", "has a line break", {"SYNTHETIC_ENVIRONMENT": "prod\nx"}
    ),
    "empty admin token": Case(
        "SYNTHETIC_ADMIN_TOKEN", "must not be empty", {"SYNTHETIC_ADMIN_TOKEN": ""}
    ),
    "label not utf-8": Case(
        "SYNTHETIC_LABELS",
        "the value of label 'region' is not valid UTF-8",
        {"SYNTHETIC_LABELS__REGION": os.fsdecode(b"eu-\xff")},
        ("serve",),
    ),
    "shutdown grace": Case(
        "SYNTHETIC_SHUTDOWN_GRACE", "must be at most 1d", {"SYNTHETIC_SHUTDOWN_GRACE": "400d"}
    ),
    "checks path empty": Case(
        "SYNTHETIC_CHECKS_PATH", "must not be empty", {"SYNTHETIC_CHECKS_PATH": ""}, ("validate",)
    ),
    "history size": Case("SYNTHETIC_HISTORY_SIZE", "greater than", {"SYNTHETIC_HISTORY_SIZE": "0"}),
    "base url password": Case(
        "SYNTHETIC_TARGETS__API__BASE_URL",
        "got 'ftp://user:***@api.example.com'",
        {"SYNTHETIC_TARGETS__API__BASE_URL": f"ftp://user:{URL_PASSWORD}@api.example.com"},
    ),
    "base url port": Case(
        "SYNTHETIC_TARGETS__API__BASE_URL",
        "got 'https://user:***@api.example.com:99999'",
        {"SYNTHETIC_TARGETS__API__BASE_URL": f"https://user:{URL_PASSWORD}@api.example.com:99999"},
    ),
    "base url query": Case(
        "SYNTHETIC_TARGETS__API__BASE_URL",
        "must not have a query or fragment",
        {"SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com/v1?key=x"},
    ),
    "header newline": Case(
        "SYNTHETIC_TARGETS__API__HEADERS",
        "the value of header 'X-Key' has a line break",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__HEADERS": '{"X-Key": "' + SECRET + '\\nInjected: 1"}',
        },
        ("list", "run", "serve"),
    ),
    "header name": Case(
        "SYNTHETIC_TARGETS__API__HEADERS",
        "invalid header name 'X Key'",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__HEADERS": '{"X Key": "1"}',
        },
    ),
    "framing header": Case(
        "SYNTHETIC_TARGETS__API__HEADERS",
        "header 'Content-Length' is set per request",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__HEADERS": '{"Content-Length": "0"}',
        },
    ),
    "headers json": Case(
        "SYNTHETIC_TARGETS__API__HEADERS",
        "expected JSON",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__HEADERS": "{'X-Key': '" + SECRET + "'}",
        },
    ),
    "bearer secret newline": Case(
        "SYNTHETIC_SECRETS__TOKEN",
        "is sent as a bearer token",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__BEARER_SECRET": "token",
            "SYNTHETIC_SECRETS__TOKEN": SECRET + "\n",
        },
    ),
    "basic auth secret not user:password": Case(
        "SYNTHETIC_SECRETS__LOGIN",
        "is not of the form user:password",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__BASIC_AUTH_SECRET": "login",
            "SYNTHETIC_SECRETS__LOGIN": SECRET,
        },
    ),
    "two kinds of authentication": Case(
        "SYNTHETIC_TARGETS__API",
        "BEARER_SECRET and BASIC_AUTH_SECRET are both set",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__BEARER_SECRET": "api_key",
            "SYNTHETIC_TARGETS__API__BASIC_AUTH_SECRET": "api_key",
        },
        ("list", "run", "serve"),
    ),
    "oauth2 without client id": Case(
        "SYNTHETIC_TARGETS__API",
        "OAUTH2_TOKEN_URL is set but OAUTH2_CLIENT_ID not",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__OAUTH2_TOKEN_URL": "https://auth.example.com/token",
            "SYNTHETIC_TARGETS__API__OAUTH2_SECRET": "api_key",
        },
    ),
    "oauth2 secret missing": Case(
        "SYNTHETIC_TARGETS__API__OAUTH2_SECRET",
        "no secret named 'client_secret'",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__OAUTH2_TOKEN_URL": "https://auth.example.com/token",
            "SYNTHETIC_TARGETS__API__OAUTH2_CLIENT_ID": "synthetic",
            "SYNTHETIC_TARGETS__API__OAUTH2_SECRET": "CLIENT_SECRET",
        },
        ("list", "run", "serve"),
    ),
    "oauth2 token url": Case(
        "SYNTHETIC_TARGETS__API__OAUTH2_TOKEN_URL",
        "must not carry credentials",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__OAUTH2_TOKEN_URL": f"https://u:{SECRET}@auth.example.com/t",
            "SYNTHETIC_TARGETS__API__OAUTH2_CLIENT_ID": "synthetic",
            "SYNTHETIC_TARGETS__API__OAUTH2_SECRET": "api_key",
        },
    ),
    "ip protocol": Case(
        "SYNTHETIC_TARGETS__API__IP_PROTOCOL",
        "Input should be 'ip4' or 'ip6'",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__IP_PROTOCOL": "ipv6",
        },
    ),
    "max body bytes": Case(
        "SYNTHETIC_TARGETS__API__MAX_BODY_BYTES",
        "could not parse",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__MAX_BODY_BYTES": "lots",
        },
        ("list", "serve"),
    ),
    "checks path missing": Case(
        "SYNTHETIC_CHECKS_PATH",
        "does not exist",
        {"SYNTHETIC_CHECKS_PATH": "{tmp}/no-such-checks"},
        ("list", "validate", "run", "serve", "demo"),
    ),
    "checks option missing": Case(
        "--checks",
        "does not exist",
        commands=("list", "validate", "run", "serve", "demo"),
        args=("--checks", "{tmp}/no-such-checks"),
    ),
    "checks option not python": Case(
        "--checks",
        "is neither a directory nor a .py file",
        commands=("validate", "serve"),
        args=("--checks", "{tmp}/notes.txt"),
    ),
    "ca bundle missing": Case(
        "SYNTHETIC_TARGETS__API__CA_BUNDLE",
        "does not exist",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__CA_BUNDLE": "{tmp}/no-such-ca.pem",
        },
        ("run", "serve", "demo"),
    ),
    "ca bundle not pem": Case(
        "SYNTHETIC_TARGETS__API__CA_BUNDLE",
        "holds no PEM CA certificate",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__CA_BUNDLE": "{tmp}/server.key",
        },
        ("run", "serve"),
    ),
    "ca bundle directory": Case(
        "SYNTHETIC_TARGETS__API__CA_BUNDLE",
        "is a directory",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__CA_BUNDLE": "{tmp}",
        },
        ("run",),
    ),
    "client cert missing": Case(
        "SYNTHETIC_TARGETS__API__CLIENT_CERT",
        "no-such-client.crt does not exist",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__CLIENT_CERT": "{tmp}/no-such-client.crt",
        },
        ("run", "serve", "demo"),
    ),
    "client key mismatch": Case(
        "SYNTHETIC_TARGETS__API__CLIENT_KEY",
        "other.key is not the key of the certificate in",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__CLIENT_CERT": "{tmp}/server.crt",
            "SYNTHETIC_TARGETS__API__CLIENT_KEY": "{tmp}/other.key",
        },
        ("run", "serve"),
    ),
    "client key wrong password": Case(
        "SYNTHETIC_TARGETS__API__CLIENT_KEY_PASSWORD_SECRET",
        "the secret is not the password of",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__CLIENT_CERT": "{tmp}/server.crt",
            "SYNTHETIC_TARGETS__API__CLIENT_KEY": "{tmp}/encrypted.key",
            "SYNTHETIC_TARGETS__API__CLIENT_KEY_PASSWORD_SECRET": "api_key",  # holds SECRET
        },
        ("serve",),
    ),
    "client key without cert": Case(
        "SYNTHETIC_TARGETS__API__CLIENT_KEY",
        "is set but SYNTHETIC_TARGETS__API__CLIENT_CERT is not",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__CLIENT_KEY": "{tmp}/server.key",
        },
        ("list", "serve"),
    ),
    "tls versions order": Case(
        "SYNTHETIC_TARGETS__API__MIN_TLS_VERSION",
        "TLS13 is above SYNTHETIC_TARGETS__API__MAX_TLS_VERSION (TLS12)",
        {
            "SYNTHETIC_TARGETS__API__BASE_URL": "https://api.example.com",
            "SYNTHETIC_TARGETS__API__MIN_TLS_VERSION": "TLS13",
            "SYNTHETIC_TARGETS__API__MAX_TLS_VERSION": "TLS12",
        },
    ),
    "state dir is a file": Case(
        "SYNTHETIC_STATE_DIR",
        "is not a directory",
        {"SYNTHETIC_STATE_DIR": "{tmp}/notes.txt"},
        ("run", "serve", "demo"),
    ),
    "state dir cannot be created": Case(
        "SYNTHETIC_STATE_DIR",
        "cannot create",
        {"SYNTHETIC_STATE_DIR": "{tmp}/notes.txt/state"},
        ("run", "serve"),
    ),
    "ledger damaged": Case(
        "SYNTHETIC_STATE_DIR",
        "file is not a database",
        {"SYNTHETIC_STATE_DIR": "{tmp}/damaged-state"},
        ("run", "serve"),
    ),
    "web config directory": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "is a directory",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}"},
        ("serve",),
    ),
    "web config missing": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "No such file",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/no-such.yml"},
        ("serve",),
    ),
    "web config empty": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "is empty",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/empty.yml"},
        ("serve",),
    ),
    "web config without tls or users": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "configures neither TLS nor basic auth",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/no-users.yml"},
        ("serve",),
    ),
    "web config duplicate key": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "duplicate key 'basic_auth_users'",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/duplicate.yml"},
        ("serve",),
    ),
    "web config list": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "must be a YAML mapping",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/list.yml"},
        ("serve",),
    ),
    "web config binary": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "is not UTF-8 text",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/binary.yml"},
        ("serve",),
    ),
    "web config key without cert": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "holds no PEM certificate",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/key-only.yml"},
        ("serve",),
    ),
    "web config bad key": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "holds no PEM private key",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/bad-key.yml"},
        ("serve",),
    ),
    "web config key mismatch": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "is not the key of the certificate",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/mismatch.yml"},
        ("serve",),
    ),
    "web config bad client ca": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "holds no PEM CA certificate",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/bad-client-ca.yml"},
        ("serve",),
    ),
    "web config bad bcrypt": Case(
        "SYNTHETIC_WEB_CONFIG_FILE",
        "basic_auth_users.alice is not a bcrypt hash",
        {"SYNTHETIC_WEB_CONFIG_FILE": "{tmp}/bad-hash.yml"},
        ("serve",),
    ),
    "listen unresolvable": Case(
        "SYNTHETIC_LISTEN",
        "cannot resolve 'no-such-host.invalid'",
        {"SYNTHETIC_LISTEN": "no-such-host.invalid:9479"},
        ("serve",),  # the demo listens on 127.0.0.1, whatever the host
    ),
    "listen not local": Case(
        "SYNTHETIC_LISTEN",
        "192.0.2.1 is not an address of this machine",
        {"SYNTHETIC_LISTEN": "192.0.2.1:9479"},
        ("serve",),
    ),
    "listen in use": Case(
        "SYNTHETIC_LISTEN",
        "is already in use",
        {"SYNTHETIC_LISTEN": "127.0.0.1:{busy}"},
        ("serve", "demo"),
    ),
    "demo api port in use": Case(
        "--api-port",
        "is already in use",
        commands=("demo",),
        command_args=("--api-port", "{busy}"),
    ),
}

RUNS = [
    pytest.param(name, command, id=f"{name} ({command})")
    for name, case in CASES.items()
    for command in case.commands
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Certificates, keys, web configs, a damaged ledger and a check file, in one directory."""
    tmp = tmp_path_factory.mktemp("startup")
    write_checks(tmp / "checks", {"ok.py": CHECK})
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(tmp / "server.crt"))
    server.private_key_pem.write_to_path(str(tmp / "server.key"))
    trustme.CA().issue_cert("127.0.0.1").private_key_pem.write_to_path(str(tmp / "other.key"))
    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), None)
    (tmp / "encrypted.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"the-real-password"),
        )
    )
    (tmp / "notes.txt").write_text("not a check, not a key\n")
    (tmp / "empty.yml").write_text("")
    (tmp / "list.yml").write_text("- tls_server_config\n")
    (tmp / "no-users.yml").write_text("basic_auth_users: {}\n")
    hashed = "$2b$04$" + "a" * 53
    (tmp / "duplicate.yml").write_text(
        f"basic_auth_users:\n  alice: '{hashed}'\nbasic_auth_users:\n  bob: '{hashed}'\n"
    )
    (tmp / "binary.yml").write_bytes(b"\xff\xfe\x00tls")
    tls = "tls_server_config:\n  cert_file: {}\n  key_file: {}\n"
    (tmp / "key-only.yml").write_text(tls.format("server.key", "server.key"))
    (tmp / "bad-key.yml").write_text(tls.format("server.crt", "notes.txt"))
    (tmp / "mismatch.yml").write_text(tls.format("server.crt", "other.key"))
    (tmp / "bad-client-ca.yml").write_text(
        tls.format("server.crt", "server.key") + "  client_ca_file: notes.txt\n"
    )
    (tmp / "bad-hash.yml").write_text("basic_auth_users:\n  alice: '$2b$10$not-a-real-hash'\n")
    damaged = tmp / "damaged-state"
    damaged.mkdir()
    (damaged / "ledger.sqlite3").write_text("this is not an SQLite database, " * 10)
    return tmp


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port of 127.0.0.1 that another socket listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def command_args(command: str) -> list[str]:
    """Return the arguments of a command as an operator would type them."""
    return ["run", "--once"] if command == "run" else [command]


def assert_one_line(output_stderr: str, output_stdout: str, variable: str, fragment: str) -> None:
    """Assert the contract: header, one line naming the variable, no traceback, no secret."""
    records = [json.loads(line) for line in output_stderr.splitlines() if line.startswith("{")]
    assert all(r["level"] in ("DEBUG", "INFO") for r in records), output_stderr  # start-up logs
    lines = [line for line in output_stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 2, output_stderr
    assert lines[0] == HEADER, output_stderr
    assert lines[1].startswith(f"{variable}: "), lines[1]
    assert fragment in lines[1], lines[1]
    for text in (output_stderr, output_stdout):
        assert "Traceback" not in text
        assert URL_PASSWORD not in text
        assert SECRET not in text


@pytest.mark.parametrize(("name", "command"), RUNS)
def test_bad_setting_is_one_line_and_exit_2(
    name: str, command: str, files: Path, busy_port: int
) -> None:
    case = CASES[name]

    def fill(text: str) -> str:
        return text.replace("{tmp}", str(files)).replace("{busy}", str(busy_port))

    settings = {
        "SYNTHETIC_CHECKS_PATH": str(files / "checks"),
        "SYNTHETIC_LISTEN": "127.0.0.1:0",
        "SYNTHETIC_SECRETS__API_KEY": SECRET,
    }
    settings.update((key, fill(value)) for key, value in case.env.items())
    env = cli_env(files / "state", f"https://user:{URL_PASSWORD}@api.example.com", **settings)
    args = [*case.args, *command_args(command), *case.command_args]
    run = run_cli([fill(arg) for arg in args], env, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert_one_line(run.stderr, run.stdout, case.variable, case.fragment)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any directory")
def test_read_only_state_dir(files: Path, tmp_path: Path) -> None:
    state = tmp_path / "read-only"
    state.mkdir(mode=0o500)
    env = cli_env(state, None, SYNTHETIC_CHECKS_PATH=str(files / "checks"))
    run = run_cli(["run", "--once"], env)
    assert run.returncode == 2
    assert_one_line(run.stderr, run.stdout, "SYNTHETIC_STATE_DIR", "is not writable")


def test_checks_that_fail_still_exit_1_and_broken_files_are_reported(
    files: Path, tmp_path: Path
) -> None:
    """Exit status 1 keeps its meaning: a failing check (run), a check file error (validate)."""
    checks = write_checks(
        tmp_path / "checks",
        {
            "ok.py": CHECK,
            "failing.py": "from synthetic_exporter import Suite, T\n\nsuite = Suite('failing')\n"
            "\n\n@suite.test\nasync def fails(t: T) -> None:\n    assert False\n",
            "broken.py": "import does_not_exist\n",
        },
    )
    env = cli_env(tmp_path / "state", None)
    validate = run_cli(["--checks", str(checks), "validate"], env)
    assert validate.returncode == 1
    assert "broken.py:1: ModuleNotFoundError" in validate.stderr
    (checks / "broken.py").unlink()
    run = run_cli(["--checks", str(checks), "run", "--once"], env)
    assert run.returncode == 1
    assert "ok/fine PASSED" in run.stdout
    assert "failing/fails FAILED" in run.stdout
