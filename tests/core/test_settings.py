"""Tests of settings: environment variables, validation and error messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synthetic_exporter.core.settings import (
    Settings,
    SettingsError,
    TargetSettings,
    env_var_name,
    listen_address,
    load_settings,
    mask_url_password,
    unknown_variable_warnings,
    url_passwords,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide SYNTHETIC_* variables of the surrounding environment."""
    for name in list(os.environ):
        if name.upper().startswith("SYNTHETIC_"):
            monkeypatch.delenv(name)


def _error(**overrides: object) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(**overrides)
    return str(info.value)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.environment == "default"
    assert settings.checks_path == Path("checks")
    assert settings.interval == 300.0
    assert settings.test_timeout == 30.0
    assert settings.concurrency == 10
    assert settings.targets == {}
    assert settings.secrets == {}
    assert settings.admin_token is None
    assert settings.log_format == "auto"
    assert settings.log_level == "INFO"
    assert listen_address(settings) == ("0.0.0.0", 9479)


def test_every_field_is_documented() -> None:
    for model in (Settings, TargetSettings):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "http://x")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__TIMEOUT", "1.5s")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__VERIFY", "false")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__HEADERS", '{"X-Tenant": "t1"}')
    monkeypatch.setenv("SYNTHETIC_SECRETS__API_KEY", "s3cret")
    monkeypatch.setenv("SYNTHETIC_LABELS__REGION", "eu")
    monkeypatch.setenv("SYNTHETIC_INTERVAL", "1h30m")
    monkeypatch.setenv("SYNTHETIC_ADMIN_TOKEN", "t0ken")
    monkeypatch.setenv("SYNTHETIC_LOG_LEVEL", "debug")
    monkeypatch.setenv("SYNTHETIC_UNKNOWN_THING", "ignored")
    settings = load_settings()
    target = settings.targets["api"]
    assert target.base_url == "http://x"
    assert target.timeout == 1.5
    assert target.verify is False
    assert target.headers == {"X-Tenant": "t1"}
    assert settings.secrets["api_key"].get_secret_value() == "s3cret"
    assert settings.labels == {"region": "eu"}
    assert settings.interval == 5400.0
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "t0ken"
    assert settings.log_level == "DEBUG"


def test_keyword_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_ENVIRONMENT", "prod")
    assert load_settings().environment == "prod"
    assert load_settings(environment="staging").environment == "staging"


def test_names_are_lower_cased() -> None:
    settings = load_settings(
        targets={"API": {"base_url": "https://x/"}}, secrets={"Api_Key": "s3cret"}
    )
    assert settings.targets["api"].base_url == "https://x"
    assert settings.secrets["api_key"].get_secret_value() == "s3cret"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://x", "http://x"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("http://[::1]:8080//", "http://[::1]:8080"),
    ],
)
def test_base_url_normalised(url: str, expected: str) -> None:
    assert TargetSettings(base_url=url).base_url == expected


@pytest.mark.parametrize("url", ["ftp://x", "x", "/api", "http://", "http://x:99999", ""])
def test_base_url_rejected(url: str) -> None:
    message = _error(targets={"api": {"base_url": url}})
    assert message == (
        f"SYNTHETIC_TARGETS__API__BASE_URL: must be an absolute http(s) URL, got {url!r}"
    )


def test_error_names_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_INTERVAL", "abc")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__TIMOUT", "5")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "ftp://x")
    lines = _error().splitlines()
    assert sorted(lines) == [
        "SYNTHETIC_INTERVAL: invalid duration 'abc': use seconds or a string like '90s', "
        "'5m', '1h30m'",
        "SYNTHETIC_TARGETS__API__BASE_URL: must be an absolute http(s) URL, got 'ftp://x'",
        "SYNTHETIC_TARGETS__API__TIMOUT: unknown setting",
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"interval": 0}, "SYNTHETIC_INTERVAL: must be greater than 0"),
        ({"test_timeout": "-1s"}, "SYNTHETIC_TEST_TIMEOUT: invalid duration '-1s': must not"),
        ({"concurrency": 0}, "SYNTHETIC_CONCURRENCY: Input should be greater than or equal to 1"),
        ({"history_size": 0}, "SYNTHETIC_HISTORY_SIZE: Input should be greater than or equal"),
        ({"log_format": "xml"}, "SYNTHETIC_LOG_FORMAT: Input should be 'auto', 'text' or 'json'"),
        ({"log_level": "loud"}, "SYNTHETIC_LOG_LEVEL: Input should be 'TRACE'"),
        ({"targets": {"api": {}}}, "SYNTHETIC_TARGETS__API__BASE_URL: required"),
        ({"targets": {"bad-name": {"base_url": "http://x"}}}, "SYNTHETIC_TARGETS: invalid target"),
        ({"labels": {"suite": "x"}}, "SYNTHETIC_LABELS: label name 'suite' is reserved"),
        ({"labels": {"__x": "x"}}, "SYNTHETIC_LABELS: invalid label name '__x'"),
        ({"labels": {"a-b": "x"}}, "SYNTHETIC_LABELS: invalid label name 'a-b'"),
        ({"listen": "9479"}, "SYNTHETIC_LISTEN: invalid listen address '9479'"),
        ({"listen": "::1:9479"}, "SYNTHETIC_LISTEN: invalid listen address '::1:9479': put IPv6"),
        ({"listen": "h:65536"}, "SYNTHETIC_LISTEN: invalid listen address 'h:65536': port must"),
        ({"listen": "h:"}, "SYNTHETIC_LISTEN: invalid listen address 'h:'"),
        ({"no_such_field": 1}, "SYNTHETIC_NO_SUCH_FIELD: unknown setting"),
    ],
)
def test_invalid_values(overrides: dict[str, object], expected: str) -> None:
    message = _error(**overrides)
    assert "\n" not in message
    assert message.startswith(expected)


def test_invalid_json_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_LABELS", "{not json")
    assert _error().startswith("SYNTHETIC_LABELS: invalid value, expected JSON")


def test_secret_values_never_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_SECRETS__API_KEY__NESTED", "topsecret1")
    monkeypatch.setenv("SYNTHETIC_ADMIN_TOKEN", '{"token": "topsecret2"}')
    message = _error(secrets={"Bad-Name": "topsecret3"})
    assert "SYNTHETIC_SECRETS: invalid secret name 'Bad-Name'" in message
    message = _error(secrets={"api_key": {"nested": "topsecret1"}}, admin_token=["topsecret2"])
    assert "SYNTHETIC_SECRETS__API_KEY: Input should be a valid string" in message
    assert "SYNTHETIC_ADMIN_TOKEN: Input should be a valid string" in message
    for value in ("topsecret1", "topsecret2", "topsecret3"):
        assert value not in message


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("0.0.0.0:9479", ("0.0.0.0", 9479)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9479", ("::1", 9479)),
        ("[::]:80", ("::", 80)),
    ],
)
def test_listen_address(listen: str, address: tuple[str, int]) -> None:
    assert listen_address(load_settings(listen=listen)) == address


def test_env_var_name() -> None:
    assert env_var_name(("interval",)) == "SYNTHETIC_INTERVAL"
    assert env_var_name(("targets", "api", "base_url")) == "SYNTHETIC_TARGETS__API__BASE_URL"
    assert env_var_name(("labels", 0)) == "SYNTHETIC_LABELS__0"


def test_labels_and_paths() -> None:
    settings = load_settings(
        labels={"region": "eu", "Zone": "a"},
        web_config_file="web.yml",
        state_dir="/tmp/state",
        shutdown_grace="2s",
    )
    assert settings.labels == {"region": "eu", "Zone": "a"}
    assert settings.web_config_file == Path("web.yml")
    assert settings.state_dir == Path("/tmp/state")
    assert settings.shutdown_grace == 2.0
    with pytest.raises(SettingsError, match="SYNTHETIC_SHUTDOWN_GRACE"):
        load_settings(shutdown_grace=0)  # no time for cleanups at all


def test_bearer_secret_must_name_a_configured_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "https://api.example.com")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BEARER_SECRET", "API_KEY")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == (
        "SYNTHETIC_TARGETS__API__BEARER_SECRET: no secret named 'api_key'"
        " (set SYNTHETIC_SECRETS__API_KEY)"
    )
    monkeypatch.setenv("SYNTHETIC_SECRETS__API_KEY", "sk-123456")
    assert load_settings().targets["api"].bearer_secret == "api_key"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X": "a\nb"}, "the value of header 'X' has a line break"),
        ({"X": "a\rb"}, "the value of header 'X' has a line break"),
        ({"X": "a\x00b"}, "the value of header 'X' has a control character"),
        ({"X": "é"}, "the value of header 'X' has non-ASCII characters"),
        ({"X": " a"}, "the value of header 'X' starts or ends with whitespace"),
        ({"X Y": "a"}, "invalid header name 'X Y'"),
        ({"X:Y": "a"}, "invalid header name 'X:Y'"),
        ({"": "a"}, "invalid header name ''"),
    ],
)
def test_headers_are_checked_like_h11(headers: dict[str, str], expected: str) -> None:
    message = _error(targets={"api": {"base_url": "http://x", "headers": headers}})
    assert message.startswith(f"SYNTHETIC_TARGETS__API__HEADERS: {expected}")
    assert "\n" not in message


def test_header_values_that_h11_accepts_are_kept() -> None:
    headers = {"X-Tenant": "t1", "Accept": "a/b; q=0.5,\tc/d", "X-Empty": "", "X-~!#": "%"}
    settings = load_settings(targets={"api": {"base_url": "http://x", "headers": headers}})
    assert settings.targets["api"].headers == headers


def test_header_values_are_never_in_errors() -> None:
    message = _error(
        targets={"api": {"base_url": "http://x", "headers": {"Authorization": "Bearer sk-9\n"}}}
    )
    assert "sk-9" not in message
    assert "'Authorization' has a line break" in message


def test_bad_json_in_a_nested_variable_names_that_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "http://x")
    monkeypatch.setenv("synthetic_targets__api__headers", "{'X-Key': 'sk-secret'}")
    message = _error()
    assert message == (
        "SYNTHETIC_TARGETS__API__HEADERS: invalid value, expected JSON (Expecting property name"
        " enclosed in double quotes at character 1)"
    )
    monkeypatch.delenv("synthetic_targets__api__headers")
    monkeypatch.setenv("SYNTHETIC_SECRETS", '{"api_key": "sk-secret"')
    message = _error()
    assert message.startswith("SYNTHETIC_SECRETS: invalid value, expected JSON (Expecting ','")
    assert "sk-secret" not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ftp://user:pa55word@host/x", "ftp://user:***@host/x"),
        ("https://user:pa55word@host:99999", "https://user:***@host:99999"),
        ("https://user:pa55word@exa mple.com", "https://user:***@exa mple.com"),
        ("https://user:pa55word@host/x?q=1", "https://user:***@host/x?q=1"),
    ],
)
def test_url_passwords_are_masked_in_errors(url: str, shown: str) -> None:
    message = _error(targets={"api": {"base_url": url}})
    assert "pa55word" not in message
    assert f"got {shown!r}" in message


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://user:secret@host/x", "https://user:***@host/x"),
        ("https://user@host/x", "https://user@host/x"),
        ("https://host/x@y", "https://host/x@y"),
        ("https://u:p@ss@host", "https://u:***@host"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url_password(url: str, masked: str) -> None:
    assert mask_url_password(url) == masked


def test_url_passwords_are_listed_for_redaction() -> None:
    settings = load_settings(
        targets={"a": {"base_url": "https://u:s3cret@host"}, "b": {"base_url": "https://host"}}
    )
    assert url_passwords(settings) == ["s3cret"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"environment": ""}, "SYNTHETIC_ENVIRONMENT: must not be empty"),
        ({"environment": "prod\n"}, "SYNTHETIC_ENVIRONMENT: is sent as the X-Synthetic-Test"),
        ({"admin_token": ""}, "SYNTHETIC_ADMIN_TOKEN: must not be empty"),
        ({"admin_token": "t0ken\n"}, "SYNTHETIC_ADMIN_TOKEN: is compared with a header value"),
        ({"targets": {"a": {"base_url": "http://h/#x"}}}, "SYNTHETIC_TARGETS__A__BASE_URL: must"),
        ({"targets": {"a": {"base_url": "http://h\t/"}}}, "SYNTHETIC_TARGETS__A__BASE_URL: has"),
        ({"targets": {"a": {"base_url": "http://h/a\nb"}}}, "SYNTHETIC_TARGETS__A__BASE_URL: has"),
    ],
)
def test_values_sent_in_headers_are_checked(overrides: dict[str, object], expected: str) -> None:
    message = _error(**overrides)
    assert "\n" not in message
    assert message.startswith(expected)
    assert "t0ken" not in message


def test_a_bearer_secret_must_be_a_header_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "https://api.example.com")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BEARER_SECRET", "api_key")
    monkeypatch.setenv("SYNTHETIC_SECRETS__API_KEY", "sk-123456\n")
    assert _error() == (
        "SYNTHETIC_SECRETS__API_KEY: is sent as a bearer token"
        " (SYNTHETIC_TARGETS__API__BEARER_SECRET), and has a line break"
    )


@pytest.mark.parametrize("field", ["checks_path", "state_dir", "web_config_file"])
def test_an_empty_path_is_not_the_current_directory(field: str) -> None:
    assert _error(**{field: " "}) == (
        f"{env_var_name((field,))}: must not be empty (an empty path would mean the current"
        " directory)"
    )


def test_label_values_must_be_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_LABELS__REGION", os.fsdecode(b"eu-\xff"))
    assert _error() == "SYNTHETIC_LABELS: the value of label 'region' is not valid UTF-8"


def test_shutdown_grace_is_at_most_a_day() -> None:
    assert load_settings(shutdown_grace="1d").shutdown_grace == 86400
    assert _error(shutdown_grace="1d1s") == "SYNTHETIC_SHUTDOWN_GRACE: must be at most 1d"


@pytest.mark.parametrize("name", ["Content-Length", "transfer-encoding"])
def test_framing_headers_cannot_be_defaults(name: str) -> None:
    message = _error(targets={"api": {"base_url": "http://x", "headers": {name: "5"}}})
    assert message == (
        f"SYNTHETIC_TARGETS__API__HEADERS: header {name!r} is set per request, not as a default"
        " header"
    )


def test_unknown_synthetic_variables_are_warned_about_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNTHETIC_INTERVALL", "5s")
    monkeypatch.setenv("SYNTHETIC_CHECK_PATH", "checks")
    monkeypatch.setenv("SYNTHETIC_QWXZ", "1")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("SYNTHETIC_LOG_LEVEL", "INFO")
    monkeypatch.setenv("NOT_SYNTHETIC_INTERVALL", "5s")
    assert unknown_variable_warnings() == [
        "synthetic-exporter: warning: SYNTHETIC_CHECK_PATH is not a setting, ignored"
        " (did you mean SYNTHETIC_CHECKS_PATH?)",
        "synthetic-exporter: warning: SYNTHETIC_INTERVALL is not a setting, ignored"
        " (did you mean SYNTHETIC_INTERVAL?)",
        "synthetic-exporter: warning: SYNTHETIC_QWXZ is not a setting, ignored",
    ]
    assert load_settings().interval == 300.0  # still ignored by the settings themselves


def test_known_settings_give_no_warnings() -> None:
    environ = {f"SYNTHETIC_{name.upper()}": "x" for name in Settings.model_fields}
    assert unknown_variable_warnings({**environ, "SYNTHETIC_SECRETS__API_KEY": "k"}) == []


def _target_env(
    monkeypatch: pytest.MonkeyPatch, base_url: str = "https://api.example.com", **fields: str
) -> None:
    """Set a target ``api`` at ``base_url`` with ``fields`` (SYNTHETIC_TARGETS__API__<FIELD>)."""
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", base_url)
    for name, value in fields.items():
        monkeypatch.setenv(f"SYNTHETIC_TARGETS__API__{name.upper()}", value)


OAUTH2 = {
    "oauth2_token_url": "https://auth.example.com/oauth/token",
    "oauth2_client_id": "synthetic",
    "oauth2_secret": "CLIENT_SECRET",
}


def test_oauth2_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _target_env(
        monkeypatch,
        **OAUTH2,
        oauth2_scopes='["read:invoices", "write"]',
        oauth2_params='{"audience": "https://api.example.com"}',
    )
    monkeypatch.setenv("SYNTHETIC_SECRETS__CLIENT_SECRET", "cl1ent-s3cret")
    target = load_settings().targets["api"]
    assert target.oauth2_token_url == "https://auth.example.com/oauth/token"
    assert target.oauth2_client_id == "synthetic"
    assert target.oauth2_secret == "client_secret"  # a secret's name, lower-cased
    assert target.oauth2_scopes == ["read:invoices", "write"]
    assert target.oauth2_params == {"audience": "https://api.example.com"}


def test_the_oauth2_secret_must_exist_and_not_be_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    _target_env(monkeypatch, **OAUTH2)
    assert _error() == (
        "SYNTHETIC_TARGETS__API__OAUTH2_SECRET: no secret named 'client_secret'"
        " (set SYNTHETIC_SECRETS__CLIENT_SECRET)"
    )
    monkeypatch.setenv("SYNTHETIC_SECRETS__CLIENT_SECRET", "")
    assert _error() == (
        "SYNTHETIC_SECRETS__CLIENT_SECRET: is sent as an OAuth2 client secret"
        " (SYNTHETIC_TARGETS__API__OAUTH2_SECRET), and is empty"
    )


@pytest.mark.parametrize("missing", sorted(OAUTH2))
def test_oauth2_needs_token_url_client_id_and_secret_together(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    _target_env(monkeypatch, **{k: v for k, v in OAUTH2.items() if k != missing})
    monkeypatch.setenv("SYNTHETIC_SECRETS__CLIENT_SECRET", "cl1ent-s3cret")
    message = _error()
    assert "\n" not in message
    assert message.startswith("SYNTHETIC_TARGETS__API: ")
    assert f"but {missing.upper()} not" in message


def test_oauth2_scopes_alone_need_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    _target_env(monkeypatch, oauth2_scopes='["read"]')
    assert _error() == (
        "SYNTHETIC_TARGETS__API: OAUTH2_SCOPES is set but OAUTH2_TOKEN_URL and OAUTH2_CLIENT_ID"
        " and OAUTH2_SECRET not: OAuth2 needs OAUTH2_TOKEN_URL, OAUTH2_CLIENT_ID and OAUTH2_SECRET"
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"bearer_secret": "token", "basic_auth_secret": "token"},
            "BEARER_SECRET and BASIC_AUTH_SECRET are both set",
        ),
        ({"bearer_secret": "token", **OAUTH2}, "BEARER_SECRET and OAUTH2_TOKEN_URL are both set"),
        (
            {"basic_auth_secret": "token", "oauth2_client_id": "x"},
            "BASIC_AUTH_SECRET and OAUTH2_CLIENT_ID are both set",
        ),
        (
            {"headers": '{"authorization": "Bearer x"}', **OAUTH2},
            "HEADERS (Authorization) and OAUTH2_TOKEN_URL are both set",
        ),
        (
            {"headers": '{"Authorization": "Bearer x"}', "bearer_secret": "token"},
            "HEADERS (Authorization) and BEARER_SECRET are both set",
        ),
    ],
)
def test_a_target_has_one_kind_of_authentication(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, str], expected: str
) -> None:
    _target_env(monkeypatch, **fields)
    monkeypatch.setenv("SYNTHETIC_SECRETS__TOKEN", "user:passw0rd")
    monkeypatch.setenv("SYNTHETIC_SECRETS__CLIENT_SECRET", "cl1ent-s3cret")
    assert _error() == (
        f"SYNTHETIC_TARGETS__API: {expected}: a target has one kind of authentication"
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("oauth2_token_url", "auth.example.com/token", "must be an absolute http(s) URL"),
        ("oauth2_token_url", "ftp://auth.example.com/token", "must be an absolute http(s) URL"),
        ("oauth2_token_url", "https://a.example.com/token?x=1", "must not have a query"),
        ("oauth2_token_url", "https://u:p4ssw0rd@a.example.com/t", "must not carry credentials"),
        ("oauth2_client_id", "", "must be a non-empty printable string"),
        ("oauth2_scopes", '["read write"]', "invalid scope 'read write'"),
        ("oauth2_scopes", '[""]', "invalid scope ''"),
        ("oauth2_params", '{"grant_type": "password"}', "'grant_type' is set by the agent"),
        ("oauth2_params", '{"Scope": "x"}', "'Scope' is set by the agent"),
    ],
)
def test_bad_oauth2_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str, expected: str
) -> None:
    _target_env(monkeypatch, **{**OAUTH2, field: value})
    monkeypatch.setenv("SYNTHETIC_SECRETS__CLIENT_SECRET", "cl1ent-s3cret")
    message = _error()
    assert "\n" not in message
    assert message.startswith(f"SYNTHETIC_TARGETS__API__{field.upper()}: {expected}")
    assert "p4ssw0rd" not in message


def test_the_basic_auth_secret_must_exist_and_be_user_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _target_env(monkeypatch, basic_auth_secret="API_LOGIN")
    assert _error() == (
        "SYNTHETIC_TARGETS__API__BASIC_AUTH_SECRET: no secret named 'api_login'"
        " (set SYNTHETIC_SECRETS__API_LOGIN)"
    )
    monkeypatch.setenv("SYNTHETIC_SECRETS__API_LOGIN", "no-colon-here")
    assert _error() == (
        "SYNTHETIC_SECRETS__API_LOGIN: is sent as basic auth credentials"
        " (SYNTHETIC_TARGETS__API__BASIC_AUTH_SECRET), and is not of the form user:password"
    )
    monkeypatch.setenv("SYNTHETIC_SECRETS__API_LOGIN", "synth:pa ss")
    assert load_settings().targets["api"].basic_auth_secret == "api_login"


def test_tls_options_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _target_env(
        monkeypatch,
        "https://10.0.12.7:8443",
        client_cert="/etc/mtls/tls.crt",
        client_key="/etc/mtls/tls.key",
        client_key_password_secret="MTLS_KEY",
        server_name="Partner-API.internal.",
        min_tls_version="tls12",
        max_tls_version="TLS13",
    )
    monkeypatch.setenv("SYNTHETIC_SECRETS__MTLS_KEY", "pw")
    target = load_settings().targets["api"]
    assert target.client_cert == Path("/etc/mtls/tls.crt")
    assert target.client_key == Path("/etc/mtls/tls.key")
    assert target.client_key_password_secret == "mtls_key"  # secret names are lower case
    assert target.server_name == "partner-api.internal"
    assert (target.min_tls_version, target.max_tls_version) == ("TLS12", "TLS13")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"client_key": "/k.pem"},
            "SYNTHETIC_TARGETS__API__CLIENT_KEY: is set but SYNTHETIC_TARGETS__API__CLIENT_CERT"
            " is not",
        ),
        (
            {"min_tls_version": "TLS13", "max_tls_version": "TLS12"},
            "SYNTHETIC_TARGETS__API__MIN_TLS_VERSION: TLS13 is above"
            " SYNTHETIC_TARGETS__API__MAX_TLS_VERSION (TLS12)",
        ),
        (
            {"client_cert": "/c.pem", "client_key_password_secret": "nope"},
            "SYNTHETIC_TARGETS__API__CLIENT_KEY_PASSWORD_SECRET: no secret named 'nope'"
            " (set SYNTHETIC_SECRETS__NOPE)",
        ),
        (
            {"client_cert": "/c.pem", "client_key_password_secret": "empty"},
            "SYNTHETIC_SECRETS__EMPTY: is sent as a key's password"
            " (SYNTHETIC_TARGETS__API__CLIENT_KEY_PASSWORD_SECRET), and is empty",
        ),
        (
            {"max_tls_version": "TLS14"},
            "SYNTHETIC_TARGETS__API__MAX_TLS_VERSION: Input should be 'TLS10', 'TLS11', 'TLS12'"
            " or 'TLS13'",
        ),
        ({"server_name": "api example"}, "SYNTHETIC_TARGETS__API__SERVER_NAME: must be a host"),
        ({"server_name": "-a.example"}, "SYNTHETIC_TARGETS__API__SERVER_NAME: must be a host"),
        ({"server_name": "bücher.example"}, "xn-- form"),
        ({"client_cert": ""}, "SYNTHETIC_TARGETS__API__CLIENT_CERT: must not be empty"),
    ],
)
def test_tls_options_that_do_not_go_together_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, str], expected: str
) -> None:
    monkeypatch.setenv("SYNTHETIC_SECRETS__EMPTY", "")
    _target_env(monkeypatch, "https://api.example.com", **fields)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert expected in str(error.value)
    assert len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize(
    "field",
    ["client_cert", "client_key", "server_name", "min_tls_version", "max_tls_version"],
)
def test_tls_options_on_a_plain_http_target_are_refused(
    monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    value = {"server_name": "api.example.com"}.get(field, "TLS12" if "version" in field else "/f")
    fields = {field: value, "client_cert": "/c.pem"} if field == "client_key" else {field: value}
    _target_env(monkeypatch, "http://api.example.com", **fields)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert (
        f"SYNTHETIC_TARGETS__API__{field.upper()}: is a TLS option, but"
        " SYNTHETIC_TARGETS__API__BASE_URL is http:// (no TLS)"
    ) in str(error.value)


def test_network_options_default_to_the_resolver_s_order_and_10_mib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "https://api.example.com")
    target = load_settings().targets["api"]
    assert (target.ip_protocol, target.ip_protocol_fallback) == (None, True)
    assert target.max_body_bytes == 10 * 1024 * 1024


def test_network_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "https://api.example.com")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__IP_PROTOCOL", "IP6")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__IP_PROTOCOL_FALLBACK", "false")
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__MAX_BODY_BYTES", "2GiB")
    target = load_settings().targets["api"]
    assert (target.ip_protocol, target.ip_protocol_fallback) == ("ip6", False)
    assert target.max_body_bytes == 2 * 1024**3


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"IP_PROTOCOL": "ipv6"},
            "SYNTHETIC_TARGETS__API__IP_PROTOCOL: Input should be 'ip4' or 'ip6'",
        ),
        (
            {"IP_PROTOCOL_FALLBACK": "false"},
            "SYNTHETIC_TARGETS__API: IP_PROTOCOL_FALLBACK=false needs IP_PROTOCOL (ip4 or ip6)",
        ),
        (
            {"IP_PROTOCOL": "ip4", "PROXY_URL": "http://proxy:3128"},
            "SYNTHETIC_TARGETS__API: IP_PROTOCOL has no effect with PROXY_URL (the proxy"
            " resolves the target's name): unset one of them",
        ),
        ({"MAX_BODY_BYTES": "0"}, "SYNTHETIC_TARGETS__API__MAX_BODY_BYTES: Input should be"),
        ({"MAX_BODY_BYTES": "lots"}, "SYNTHETIC_TARGETS__API__MAX_BODY_BYTES: could not parse"),
    ],
)
def test_network_option_errors_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    monkeypatch.setenv("SYNTHETIC_TARGETS__API__BASE_URL", "https://api.example.com")
    for name, value in variables.items():
        monkeypatch.setenv(f"SYNTHETIC_TARGETS__API__{name}", value)
    message = _error()
    assert "\n" not in message
    assert message.startswith(expected), message
