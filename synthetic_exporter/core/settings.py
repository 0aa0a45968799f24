"""Agent settings, read from SYNTHETIC_* environment variables."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import SplitResult, urlsplit

import pydantic_settings
from pydantic import (
    BaseModel,
    ByteSize,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from synthetic_exporter.core.durations import PositiveDuration
from synthetic_exporter.core.target_settings import (
    TargetSettings,
    TlsVersion,
    header_problem,
    mask_url_password,
)

__all__ = [
    "ENV_PREFIX",
    "RESERVED_LABELS",
    "Settings",
    "SettingsError",
    "TargetSettings",
    "env_var_name",
    "header_problem",
    "listen_address",
    "load_settings",
    "mask_url_password",
    "unknown_variable_warnings",
    "url_passwords",
]

ENV_PREFIX = "SYNTHETIC_"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
LABEL_PATTERN = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RESERVED_LABELS = frozenset(
    {
        "suite",
        "test",
        "target",
        "phase",
        "result",
        "cache",
        "code",
        "pop",
        "version",
        "environment",
        "shard",
    }
)
SECRET_FIELDS = frozenset({"secrets", "admin_token"})
# Beyond a day a grace is never meant (Kubernetes has killed the pod long before), and past
# threading.TIMEOUT_MAX the timer that bounds the shutdown would fail.
MAX_SHUTDOWN_GRACE_SECONDS = 86400.0
LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


SHARD_PATTERN = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (0-based) of ``total``: a replica's share of the suites."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """Return the shard of ``"i/N"`` with ``0 <= i < N``."""
    match = SHARD_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"invalid shard {text!r}: use i/N, e.g. 0/3 (0-based)")
    index, total = int(match[1]), int(match[2])
    if total < 1 or index >= total:
        raise ValueError(f"invalid shard {text!r}: need 0 <= i < N")
    return Shard(index, total)


class SettingsError(Exception):
    """Invalid settings; str() is one line per problem, each naming its environment variable."""


def _url_password(parts: SplitResult) -> str | None:
    try:
        return parts.password
    except ValueError:
        return None


def _is_utf8(text: str) -> bool:
    """Tell whether ``text`` encodes as UTF-8.

    Environment bytes that are not UTF-8 arrive as surrogates, which the metrics exposition
    cannot encode.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lower_keys(value: Any, kind: str) -> Any:
    """Lower-case the keys of a name -> value mapping and check the names."""
    if not isinstance(value, dict):
        return value
    result: dict[Any, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValueError(f"{kind} names must be strings, got {key!r}")
        name = key.lower()
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"invalid {kind} name {key!r}: must match ^[a-z][a-z0-9_]*$")
        if name in result:
            raise ValueError(f"duplicate {kind} name {name!r}")
        result[name] = item
    return result


def _split_listen(value: str) -> tuple[str, int]:
    """Split 'host:port' or '[ipv6]:port' into host (no brackets) and port."""
    hint = "use host:port, e.g. '0.0.0.0:9479' or '[::1]:9479'"
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host:
            raise ValueError(f"invalid listen address {value!r}: {hint}")
    elif ":" in host:
        raise ValueError(f"invalid listen address {value!r}: put IPv6 hosts in brackets, {hint}")
    if not sep or not host or any(c in host for c in "[]/ ") or not port.isdigit():
        raise ValueError(f"invalid listen address {value!r}: {hint}")
    number = int(port)
    if number > 65535:
        raise ValueError(f"invalid listen address {value!r}: port must be 0-65535")
    return host, number


class Settings(BaseSettings):
    """Agent settings: SYNTHETIC_<FIELD>, nested with "__" (SYNTHETIC_TARGETS__API__BASE_URL)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        hide_input_in_errors=True,
        use_attribute_docstrings=True,
    )

    environment: str = "default"
    """Environment name, exported as a label."""
    checks_path: Path = Path("checks")
    """Directory (or single .py file) of check files."""
    interval: PositiveDuration = 300.0
    """Default suite interval."""
    test_timeout: PositiveDuration = 30.0
    """Default per-test timeout."""
    suite_timeout: PositiveDuration = 300.0
    """Default per-suite timeout."""
    cleanup_timeout: PositiveDuration = 30.0
    """Time limit of each cleanup and janitor call."""
    shutdown_grace: PositiveDuration = 30.0
    """On SIGTERM, how long cleanups may take before the agent exits."""
    concurrency: int = Field(default=10, ge=1)
    """Number of suites run at once."""
    listen: str = "0.0.0.0:9479"
    """host:port of the HTTP server; IPv6 hosts in brackets, e.g. [::1]:9479."""
    targets: dict[str, TargetSettings] = {}
    """Targets by name (lower case, e.g. SYNTHETIC_TARGETS__API__BASE_URL)."""
    secrets: dict[str, SecretStr] = {}
    """Secrets by name (lower case, e.g. SYNTHETIC_SECRETS__API_KEY)."""
    state_dir: Path = Path(".synthetic-exporter")
    """Directory of the SQLite cleanup ledger."""
    log_format: Literal["auto", "text", "json"] = "auto"
    """Log format; auto is text on a terminal, else JSON."""
    log_level: LogLevel = "INFO"
    """Minimum level of log messages."""
    labels: dict[str, str] = {}
    """Extra constant labels on every metric."""
    admin_token: SecretStr | None = None
    """Bearer token for POST /api/v1/run; unset disables the endpoint."""
    web_config_file: Path | None = None
    """Exporter-toolkit web config file (TLS, basic auth)."""
    history_size: int = Field(default=100, ge=1)
    """Number of recent runs also kept in memory (until the run history file has them)."""
    sweep_interval: PositiveDuration = 300.0
    """How often the cleanup ledger retries removing leftover test data."""
    orphan_grace: PositiveDuration = 3600.0
    """Age after which listed synthetic data that no run holds is deleted as an orphan."""
    intent_max_age: PositiveDuration = 86400.0
    """How long an intent (a create whose answer never came) is looked up before it is dropped."""
    shard: Shard | None = None
    """Run only shard i of N (``i/N``, 0-based): a replica's share of the suites."""
    history_retention: PositiveDuration = 7 * 86400.0
    """How long suite runs are kept in the run history (state directory, SQLite)."""
    history_max_bytes: ByteSize = Field(default=ByteSize(256 * 1024 * 1024), ge=1024 * 1024)
    """Size limit of the run history file, e.g. 256MiB; the oldest runs go first."""
    failure_reminder: PositiveDuration = 3600.0
    """While a test keeps failing, how often its failure is logged again."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces); unset: spans not exported."""
    metrics_duration_histograms: bool = False
    """Export per-test and per-suite duration histograms (16 and 15 series each)."""
    metrics_run_counters: bool = False
    """Export per-test and per-suite run counters by result (6 series each)."""
    metrics_http_per_test: bool = False
    """Label the HTTP phase histogram and response counter by suite and test, not per target."""
    # Browser checks (issue 17): ``t.page()``.
    browser_concurrency: int = Field(default=2, ge=1)
    """Number of browser pages open at once across the agent (each in a fresh context)."""
    browser_executable: Path | None = None
    """Chromium to launch; unset: /usr/bin/chromium if present, else Playwright's own."""
    browser_args: list[str] = []
    """Extra Chromium flags (a JSON list), e.g. ["--lang=de-DE"]."""

    @field_validator("shard", mode="before")
    @classmethod
    def _parse_shard(cls, value: Any) -> Any:
        return parse_shard(value) if isinstance(value, str) else value

    @field_validator(
        "checks_path", "state_dir", "web_config_file", "browser_executable", mode="before"
    )
    @classmethod
    def _refuse_empty_path(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty (an empty path would mean the current directory)")
        return value

    @field_validator("shutdown_grace")
    @classmethod
    def _check_shutdown_grace(cls, value: float) -> float:
        if value > MAX_SHUTDOWN_GRACE_SECONDS:
            raise ValueError("must be at most 1d")
        return value

    @field_validator("environment")
    @classmethod
    def _check_environment(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty (it is a label value and a header value)")
        problem = header_problem(value)
        if problem is not None:
            raise ValueError(f"is sent as the X-Synthetic-Test header value, and {problem}")
        return value

    @field_validator("admin_token")
    @classmethod
    def _check_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value()
        if not token:
            raise ValueError("must not be empty (unset it to disable POST /api/v1/run)")
        problem = header_problem(token)
        if problem is not None:
            raise ValueError(f"is compared with a header value, and {problem}")
        return value

    @field_validator("targets", mode="before")
    @classmethod
    def _normalise_targets(cls, value: Any) -> Any:
        return _lower_keys(value, "target")

    @field_validator("secrets", mode="before")
    @classmethod
    def _normalise_secrets(cls, value: Any) -> Any:
        return _lower_keys(value, "secret")

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        _split_listen(value)
        return value

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not LABEL_PATTERN.fullmatch(name) or name.startswith("__"):
                raise ValueError(
                    f"invalid label name {name!r}: must match ^[a-zA-Z_][a-zA-Z0-9_]*$"
                )
            if name in RESERVED_LABELS:
                reserved = ", ".join(sorted(RESERVED_LABELS))
                raise ValueError(f"label name {name!r} is reserved ({reserved})")
            if not _is_utf8(value[name]):
                raise ValueError(f"the value of label {name!r} is not valid UTF-8")
        return value


def env_var_name(loc: tuple[str | int, ...]) -> str:
    """Return the environment variable of a validation error location."""
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()


def _describe(error: Any) -> str:
    """Return one line describing a pydantic error, without the input value."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    if error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    elif error["type"] == "extra_forbidden":
        message = "unknown setting"
    elif error["type"] == "missing":
        message = "required"
    else:
        message = str(error["msg"])
    secret = error.get("input")
    if loc and loc[0] in SECRET_FIELDS and isinstance(secret, str) and secret and secret in message:
        message = message.replace(secret, "***")  # never print a secret's value
    return f"{env_var_name(loc)}: {message}"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment and keyword overrides."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [_describe(error) for error in exc.errors(include_url=False)]
        raise SettingsError("\n".join(lines)) from None
    except pydantic_settings.SettingsError as exc:
        # Raised for unparsable JSON in a complex field, e.g. SYNTHETIC_TARGETS='{'.
        match = re.search(r'field "(\w+)"', str(exc))
        field = match.group(1) if match else None
        name, reason = _unparsable_variable(field) if field else (ENV_PREFIX + "*", "")
        raise SettingsError(f"{name}: invalid value, expected JSON{reason}") from None
    problems = [
        *_secret_problems(settings, "bearer_secret", "a bearer token", header_problem),
        *_secret_problems(
            settings, "proxy_auth_secret", "proxy credentials", _user_password_problem
        ),
        *_secret_problems(
            settings, "client_key_password_secret", "a key's password", _empty_problem
        ),
        *_tls_problems(settings),
        *_secret_problems(
            settings, "basic_auth_secret", "basic auth credentials", _user_password_problem
        ),
        *_secret_problems(settings, "oauth2_secret", "an OAuth2 client secret", _empty_problem),
    ]
    if problems:
        raise SettingsError("\n".join(problems))
    return settings


def unknown_variable_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return one warning line per ``SYNTHETIC_*`` variable that names no setting.

    Only the top-level name is checked (``SYNTHETIC_TARGETS__X__...`` is validated by the
    settings themselves). A warning, not an error: other tools may share the prefix.
    """
    known = sorted(Settings.model_fields)
    lines = []
    for key in sorted(os.environ if environ is None else environ):
        name = key.upper()
        if not name.startswith(ENV_PREFIX):
            continue
        field = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if field in known:
            continue
        close = difflib.get_close_matches(field, known, n=1)
        hint = f" (did you mean {env_var_name((close[0],))}?)" if close else ""
        lines.append(f"synthetic-exporter: warning: {key} is not a setting, ignored{hint}")
    return lines


def _strip_optional(annotation: Any) -> Any:
    """Return ``X`` for ``X | None``, else the annotation itself."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, type(int | None)) and len(args) == 1:
        return args[0]
    return annotation


def _is_complex(path: list[str]) -> bool:
    """Tell whether the setting at ``path`` (lower case) is read from JSON (a mapping or model)."""
    annotation: Any = Settings
    for part in path:
        annotation = _strip_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return False
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return False
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return get_origin(annotation) in (dict, list)


def _unparsable_variable(field: str) -> tuple[str, str]:
    """Return the variable of ``field`` (itself or nested) that is not JSON, and why (no value)."""
    prefix = env_var_name((field,))
    for key in sorted(os.environ):
        name = key.upper()
        if name != prefix and not name.startswith(prefix + "__"):
            continue
        path = [field, *filter(None, name[len(prefix) :].lower().split("__"))]
        if not _is_complex(path):
            continue
        try:
            json.loads(os.environ[key])
        except json.JSONDecodeError as exc:
            return name, f" ({exc.msg} at character {exc.pos})"
    return prefix, ""


def _user_password_problem(value: str) -> str | None:
    """Return why ``value`` cannot be sent as ``user:password`` Basic credentials, or None."""
    problem = header_problem(value)
    if problem is None and ":" not in value:
        problem = "is not of the form user:password"
    return problem


def _empty_problem(value: str) -> str | None:
    """Return why ``value`` cannot be a password or client secret (it is empty), or None."""
    return "is empty" if not value else None


TLS_OPTIONS = (
    "client_cert",
    "client_key",
    "client_key_password_secret",
    "server_name",
    "min_tls_version",
    "max_tls_version",
)
TLS_ORDER: tuple[TlsVersion, ...] = get_args(TlsVersion)


def _tls_problems(settings: Settings) -> list[str]:
    """Return a line for every target's TLS options that do not go together."""
    return [
        line
        for name, target in settings.targets.items()
        for line in _target_tls_problems(name, target)
    ]


def _target_tls_problems(name: str, target: TargetSettings) -> list[str]:
    """Return a line for each of a target's TLS options that does not go with the others."""

    def variable(field: str) -> str:
        return env_var_name(("targets", name, field))

    if not target.base_url.lower().startswith("https:"):
        return [
            f"{variable(option)}: is a TLS option, but {variable('base_url')} is http://"
            " (no TLS): use an https:// URL or unset it"
            for option in TLS_OPTIONS
            if getattr(target, option) is not None
        ]
    problems: list[str] = []
    if target.client_cert is None:
        problems.extend(
            f"{variable(option)}: is set but {variable('client_cert')} is not"
            for option in ("client_key", "client_key_password_secret")
            if getattr(target, option) is not None
        )
    low, high = target.min_tls_version, target.max_tls_version
    if low is not None and high is not None and TLS_ORDER.index(low) > TLS_ORDER.index(high):
        problems.append(
            f"{variable('min_tls_version')}: {low} is above {variable('max_tls_version')} ({high})"
        )
    return problems


def _secret_problems(
    settings: Settings, field: str, sent_as: str, problem_of: Callable[[str], str | None]
) -> list[str]:
    """Return a line for every target whose secret named by ``field`` is missing or unusable.

    ``problem_of`` says why a secret's value cannot be sent as ``sent_as`` (None when it can).
    """
    problems = []
    for name, target in settings.targets.items():
        secret_name = getattr(target, field)
        if secret_name is None:
            continue
        variable = env_var_name(("targets", name, field))
        secret = settings.secrets.get(secret_name)
        if secret is None:
            problems.append(
                f"{variable}: no secret named {secret_name!r}"
                f" (set SYNTHETIC_SECRETS__{secret_name.upper()})"
            )
            continue
        problem = problem_of(secret.get_secret_value())
        if problem is not None:
            problems.append(
                f"{env_var_name(('secrets', secret_name))}: is sent as {sent_as}"
                f" ({variable}), and {problem}"
            )
    return problems


def url_passwords(settings: Settings) -> list[str]:
    """Return the passwords written in target base URLs, for redaction."""
    passwords = (_url_password(urlsplit(t.base_url)) for t in settings.targets.values())
    return [p for p in passwords if p]


def listen_address(settings: Settings) -> tuple[str, int]:
    """Return the host (without brackets) and port the HTTP server listens on."""
    return _split_listen(settings.listen)
