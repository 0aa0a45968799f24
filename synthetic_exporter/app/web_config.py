"""The web config file: TLS and basic auth for the agent's HTTP server.

The format is the Prometheus exporter-toolkit's, so one file can serve several exporters::

    tls_server_config:
      cert_file: /etc/synthetic-exporter/tls.crt
      key_file: /etc/synthetic-exporter/tls.key
      client_ca_file: /etc/synthetic-exporter/ca.crt     # optional: clients must present a cert
    basic_auth_users:
      prometheus: $2y$10$...                             # bcrypt hash (htpasswd -nBC 10 "")

Supported keys are exactly these; anything else is an error rather than silently ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, ValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WebConfigError(ValueError):
    """The web config file cannot be used."""


class TLSServerConfig(BaseModel):
    """Server certificate, key, and optionally the CA that client certificates must chain to."""

    model_config = ConfigDict(extra="forbid")

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


class WebConfig(BaseModel):
    """The parsed web config file."""

    model_config = ConfigDict(extra="forbid")

    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = {}


BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
EMPTY_HINT = "give tls_server_config and/or basic_auth_users, or unset SYNTHETIC_WEB_CONFIG_FILE"


def _strict_loader() -> Any:
    """Return a SafeLoader that refuses duplicate keys, as exporter-toolkit's strict parser does.

    PyYAML would keep the last one silently: a second ``basic_auth_users`` replaces the first.
    """
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _read_yaml(path: Path) -> Any:
    """Return the parsed file; every problem is one line naming the file."""
    import yaml  # only agents with a web config need it

    if path.is_dir():
        raise WebConfigError(f"{path} is a directory, not a file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise WebConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise WebConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_strict_loader())  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise WebConfigError(f"{path} is not valid YAML{where}: {problem}") from None


def _file_problem(file: Path) -> str | None:
    if file.is_dir():
        return f"{file} is a directory"
    if not file.is_file():
        return f"no such file {file}"
    return None


def _check_tls(path: Path, tls: TLSServerConfig) -> None:
    """Load the certificate, key and client CA as the server will, so that mistakes stop here."""
    for key, file in (
        ("cert_file", tls.cert_file),
        ("key_file", tls.key_file),
        ("client_ca_file", tls.client_ca_file),
    ):
        problem = _file_problem(file) if file is not None else None
        if problem is not None:
            raise WebConfigError(f"{path}: tls_server_config.{key}: {problem}")
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(tls.cert_file))
    except (ssl.SSLError, OSError):
        raise WebConfigError(
            f"{path}: tls_server_config.cert_file: {tls.cert_file} holds no PEM certificate"
        ) from None
    asked: list[bool] = []

    def no_password() -> bytes:
        asked.append(True)
        return b""

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file), password=no_password)
    except (ssl.SSLError, OSError) as exc:
        if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
            problem = f"{tls.key_file} is not the key of the certificate in {tls.cert_file}"
        elif asked:
            problem = f"{tls.key_file} is encrypted (keys with a passphrase are not supported)"
        else:
            problem = f"{tls.key_file} holds no PEM private key"
        raise WebConfigError(f"{path}: tls_server_config.key_file: {problem}") from None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(tls.client_ca_file))
        except (ssl.SSLError, OSError):
            raise WebConfigError(
                f"{path}: tls_server_config.client_ca_file: {tls.client_ca_file} holds no PEM"
                " CA certificate"
            ) from None


def _check_bcrypt(path: Path, user: str, hashed: str) -> None:
    """Refuse anything bcrypt would refuse at the first request (where it would answer 500)."""
    import bcrypt  # only agents with basic auth need it

    problem = f"{path}: basic_auth_users.{user} is not a bcrypt hash (htpasswd -nBC 10 {user!r})"
    if not BCRYPT_HASH.fullmatch(hashed):
        raise WebConfigError(problem)
    # The same hash at the lowest cost: bcrypt parses it fully, in about a millisecond.
    cheap = "$2b$04$" + hashed[7:]
    try:
        bcrypt.checkpw(b"", cheap.encode())
    except ValueError:
        raise WebConfigError(problem) from None


def load_web_config(path: Path) -> WebConfig:
    """Read and check a web config file; relative paths are relative to the file.

    Everything the server would trip on later is checked now: the certificate and key load and
    match, the client CA holds certificates, every password hash is a valid bcrypt hash.
    """
    data = _read_yaml(path)
    if data is None or data == {}:
        raise WebConfigError(f"{path} is empty: {EMPTY_HINT}")
    if not isinstance(data, dict):
        raise WebConfigError(f"{path} must be a YAML mapping: {EMPTY_HINT}")
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise WebConfigError(f"{path}: {problems}") from None
    tls = config.tls_server_config
    if tls is not None:
        base = path.parent
        tls = TLSServerConfig(
            cert_file=base / tls.cert_file,
            key_file=base / tls.key_file,
            client_ca_file=base / tls.client_ca_file if tls.client_ca_file else None,
        )
        _check_tls(path, tls)
        config = config.model_copy(update={"tls_server_config": tls})
    for user, hashed in config.basic_auth_users.items():
        _check_bcrypt(path, user, hashed)
    if tls is None and not config.basic_auth_users:
        raise WebConfigError(f"{path} configures neither TLS nor basic auth: {EMPTY_HINT}")
    return config


def uvicorn_tls_options(config: WebConfig) -> dict[str, Any]:
    """Return the uvicorn options that serve TLS as the config asks."""
    tls = config.tls_server_config
    if tls is None:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}
    if tls.client_ca_file is not None:
        options.update(ssl_ca_certs=str(tls.client_ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


class BasicAuth:
    """ASGI middleware that asks for one of the configured users on every request.

    bcrypt is slow on purpose, so checks run in a worker thread (never on the event loop) and a
    password that checked out is remembered by its salted digest, as exporter-toolkit does.
    """

    def __init__(self, app: ASGIApp, users: dict[str, str]) -> None:
        import bcrypt  # only agents with basic auth need it

        self.checkpw = bcrypt.checkpw
        self.app = app
        self.users = {user: hashed.replace("$2y$", "$2b$", 1) for user, hashed in users.items()}
        self.known: set[bytes] = set()
        self.salt = hashlib.sha256(repr(sorted(users.items())).encode()).digest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass authorised requests on; answer 401 to the others."""
        if scope["type"] != "http" or await self._authorised(scope):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", b'Basic realm="synthetic-exporter"'),
                    (b"content-type", b"text/plain; charset=utf-8"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"Unauthorized\n"})

    async def _authorised(self, scope: Scope) -> bool:
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        if not header.lower().startswith(b"basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        digest = hmac.new(self.salt, f"{user}:{password}".encode(), "sha256").digest()
        if digest in self.known:
            return True
        ok = await anyio.to_thread.run_sync(self.checkpw, password.encode(), hashed.encode())
        if ok:
            self.known.add(digest)
        return bool(ok)
