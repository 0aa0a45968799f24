"""Start-up checks that need the file system or the network: one line each, naming the setting.

Settings are checked for form in :mod:`synthetic_exporter.core.settings`; what only I/O can tell
(the checks path exists, a CA bundle holds certificates, a client certificate and its key load,
the ledger opens, the listen address binds) is checked here, before the agent starts, so that a
bad setting stops it with exit status 2 instead of a traceback or a late failure.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING

from synthetic_exporter.core.settings import env_var_name

if TYPE_CHECKING:
    from synthetic_exporter.core.settings import Settings

__all__ = [
    "ListenError",
    "StartupError",
    "check_ca_bundles",
    "check_checks_path",
    "check_client_certificates",
    "check_ledger",
    "check_otlp_endpoint",
    "listen_problem",
    "output_file_problem",
]


class StartupError(Exception):
    """A setting that cannot be used; ``variable`` names it, str() is one line."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(message)
        self.variable = variable


class ListenError(OSError):
    """The listening socket cannot be bound; str() is one line (no traceback needed)."""

    def __init__(self, host: str, port: int, message: str) -> None:
        super().__init__(message)
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.args[0])


def listen_problem(host: str, port: int, error: OSError) -> str:
    """Return one line saying why ``host:port`` cannot be bound."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return f"{shown} is already in use by another process"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine (use 0.0.0.0, [::] or a local address)"
    if error.errno == errno.EACCES:
        return f"no permission to listen on {shown} (ports below 1024 need privileges)"
    if error.errno == errno.EAFNOSUPPORT:
        return f"cannot listen on {shown}: this machine has no {'IPv6' if ':' in host else 'IPv4'}"
    return f"cannot listen on {shown}: {error.strerror or error}"


def check_checks_path(path: Path, variable: str) -> None:
    """Refuse a checks path that does not exist or is neither a directory nor a .py file."""
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise StartupError(variable, f"{path} does not exist{where}")
    if path.is_dir():
        return
    if not path.is_file() or path.suffix != ".py":
        raise StartupError(variable, f"{path} is neither a directory nor a .py file")


def output_file_problem(path: Path) -> str | None:
    """Return why a report cannot be written at ``path``, or None."""
    import os

    if path.is_dir():
        return f"{path} is a directory"
    parent = path.parent
    if not parent.is_dir():
        return f"{path}: directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{path}: not writable by this process"
    return None


def check_ca_bundles(settings: Settings) -> None:
    """Load every target's CA bundle as its TLS context will (a PEM file of certificates)."""
    import ssl  # only agents with a CA bundle pay for it here

    for name, target in settings.targets.items():
        if target.ca_bundle is None or not target.verify:
            continue
        variable = env_var_name(("targets", name, "ca_bundle"))
        path = target.ca_bundle
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise StartupError(variable, f"{path} {what}: give a PEM file of CA certificates")
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(path))
        except ssl.SSLError:
            raise StartupError(variable, f"{path} holds no PEM CA certificate") from None
        except OSError as exc:
            raise StartupError(variable, f"cannot read {path}: {exc.strerror}") from None


def check_client_certificates(settings: Settings) -> None:
    """Load every target's client certificate and key as its TLS context will."""
    targets = {n: t for n, t in settings.targets.items() if t.client_cert is not None}
    if not targets:
        return
    from synthetic_exporter.http.tls import ClientCertificateProblem, check_client_certificate

    for name, target in targets.items():
        secret = target.client_key_password_secret
        password = settings.secrets[secret].get_secret_value() if secret else None
        try:
            check_client_certificate(target, password)
        except ClientCertificateProblem as exc:
            raise StartupError(env_var_name(("targets", name, exc.field)), str(exc)) from None


def check_ledger(settings: Settings) -> None:
    """Open the state directory's cleanup ledger once (a damaged file stops the agent here)."""
    import sqlite3

    from synthetic_exporter.engine.ledger import Ledger
    from synthetic_exporter.engine.wiring import LEDGER_FILE

    path = settings.state_dir / LEDGER_FILE
    try:
        Ledger(path, owner="startup-check").close()
    except (sqlite3.Error, OSError) as exc:
        raise StartupError(
            env_var_name(("state_dir",)), f"cannot use the cleanup ledger {path}: {exc}"
        ) from None


def check_otlp_endpoint(settings: Settings) -> None:
    """Refuse an OTLP endpoint that is not an http(s) URL, or that the [otlp] extra is missing."""
    from urllib.parse import urlsplit

    endpoint = (settings.otlp_endpoint or "").strip()
    if not endpoint:  # unset or empty (the Helm chart's default): no export
        return
    variable = env_var_name(("otlp_endpoint",))
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StartupError(
            variable, "give an http:// or https:// URL, e.g. http://collector:4318/v1/traces"
        )
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
    except ImportError:
        raise StartupError(
            variable, "needs the [otlp] extra: pip install 'synthetic-exporter[otlp]'"
        ) from None
