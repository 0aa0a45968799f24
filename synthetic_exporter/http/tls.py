"""A target's TLS: its context (CA, verification, client certificate, versions) and server name.

The context is made once per target (see :class:`~synthetic_exporter.http.clients.Targets`)
and shared by both HTTP paths. The server name (``server_name``) is not part of the context:
each transport passes it as ``server_hostname`` when it starts TLS with the target's own host
(the BASE_URL's), so it is sent as SNI and the certificate is verified against it; requests to
other hosts (absolute URLs, redirects) keep their own names.

:func:`check_client_certificate` loads the client certificate as the context will, and says
in one line what is wrong (a missing file, no PEM, a key that does not match, a wrong
password), for the start-up checks. A key's password never appears in a message.
:func:`handshake_problem` says in words why a handshake failed, for a test's message.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx

from synthetic_exporter.core.target_settings import TargetSettings, TlsVersion

__all__ = [
    "TLS_VERSIONS",
    "ClientCertificateProblem",
    "check_client_certificate",
    "handshake_problem",
    "server_names",
    "tls_context",
]

TLS_VERSIONS: dict[TlsVersion, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# OpenSSL 3 refuses TLS 1.0 and 1.1 (their SHA-1 handshake signatures) at security level 1
# and above: a target that allows them also gets level 0, or the setting would do nothing.
OLD_VERSIONS = frozenset({"TLS10", "TLS11"})
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"


VERSIONS_HINT = "no TLS version in common with the server (see MIN_TLS_VERSION/MAX_TLS_VERSION)"
CLIENT_CERT_HINT = "the server refused the client certificate, or wants one (see CLIENT_CERT)"
# OpenSSL's reasons for a failed handshake that a target's TLS options explain.
HANDSHAKE_HINTS = {
    "TLSV1_ALERT_PROTOCOL_VERSION": VERSIONS_HINT,
    "UNSUPPORTED_PROTOCOL": VERSIONS_HINT,
    "WRONG_SSL_VERSION": VERSIONS_HINT,
    "NO_PROTOCOLS_AVAILABLE": VERSIONS_HINT,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": CLIENT_CERT_HINT,
    "SSLV3_ALERT_BAD_CERTIFICATE": CLIENT_CERT_HINT,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": CLIENT_CERT_HINT,
    "TLSV1_ALERT_UNKNOWN_CA": CLIENT_CERT_HINT,
    "TLSV1_ALERT_ACCESS_DENIED": CLIENT_CERT_HINT,
    "TLSV1_ALERT_UNRECOGNIZED_NAME": "the server knows no site by the name sent (see SERVER_NAME)",
    "TLSV1_UNRECOGNIZED_NAME": "the server knows no site by the name sent (see SERVER_NAME)",
}


def handshake_problem(exc: BaseException) -> str | None:
    """Return what a failed TLS handshake in ``exc`` (or its causes) means, or None.

    Only handshake failures that a target's TLS options explain are described; certificate
    verification has its own message (the engine's).
    """
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if cause is None or isinstance(cause, ssl.SSLCertVerificationError):
        return None
    hint = HANDSHAKE_HINTS.get(getattr(cause, "reason", None) or "")
    if hint is None:
        return None
    where = ""
    if isinstance(exc, httpx.RequestError):
        try:
            url = exc.request.url
        except RuntimeError:  # an error raised without its request
            pass
        else:
            where = f" with {url.host}:{url.port}" if url.port else f" with {url.host}"
    detail = str(cause).split(" (_ssl.c:", 1)[0]
    return f"TLS handshake{where} failed: {hint}: {detail}"


class _NoPassword(Exception):
    """The key is encrypted and no password was given (never prompt on a terminal)."""


def _password_of(password: str | None) -> Callable[[], str]:
    """Return the callable ``load_cert_chain`` asks for a password (only if the key needs one)."""

    def ask() -> str:
        if password is None:
            raise _NoPassword
        return password

    return ask


def tls_context(target: TargetSettings, password: str | None = None) -> ssl.SSLContext:
    """Return a new TLS context for a target's clients.

    ``password`` is the value of the secret named by ``client_key_password_secret``, if any.
    """
    cafile = str(target.ca_bundle) if target.ca_bundle is not None and target.verify else None
    context = ssl.create_default_context(cafile=cafile)
    if not target.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if target.client_cert is not None:
        key = str(target.client_key) if target.client_key is not None else None
        context.load_cert_chain(str(target.client_cert), key, password=_password_of(password))
    low, high = target.min_tls_version, target.max_tls_version
    if high is not None and low is None and high in OLD_VERSIONS:
        low = "TLS10"  # a maximum below the default minimum (TLS 1.2) means old versions
    if low in OLD_VERSIONS:
        context.set_ciphers(LEGACY_CIPHERS)
    with warnings.catch_warnings():  # Python deprecates TLS 1.0/1.1; the setting asks for them
        warnings.simplefilter("ignore", DeprecationWarning)
        if low is not None:
            context.minimum_version = TLS_VERSIONS[low]
        if high is not None:
            context.maximum_version = TLS_VERSIONS[high]
    return context


def server_names(target: TargetSettings) -> dict[str, str]:
    """Return the TLS server name to use instead of a host name: the BASE_URL host's, if set."""
    if target.server_name is None:
        return {}
    return {httpx.URL(target.base_url).host: target.server_name}


class ClientCertificateProblem(Exception):
    """Why a target's client certificate cannot be used; ``field`` names the setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _read_pem(path: Path, field: str) -> str:
    if path.is_dir():
        raise ClientCertificateProblem(field, f"{path} is a directory: give a PEM file")
    if not path.is_file():
        raise ClientCertificateProblem(field, f"{path} does not exist")
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ClientCertificateProblem(field, f"cannot read {path}: {exc.strerror}") from None


def _encrypted(field: str, path: Path) -> ClientCertificateProblem:
    return ClientCertificateProblem(
        field,
        f"{path} is encrypted: name the secret holding its password in CLIENT_KEY_PASSWORD_SECRET",
    )


def check_client_certificate(target: TargetSettings, password: str | None) -> None:
    """Load a target's client certificate and key as its context will; raise what is wrong.

    Raises :class:`ClientCertificateProblem` naming the setting at fault. Does nothing for a
    target without ``client_cert``.
    """
    if target.client_cert is None:
        return
    cert_text = _read_pem(target.client_cert, "client_cert")
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        raise ClientCertificateProblem(
            "client_cert", f"{target.client_cert} holds no PEM certificate"
        )
    key_field = "client_key" if target.client_key is not None else "client_cert"
    key_path = target.client_key or target.client_cert
    key_text = _read_pem(key_path, key_field) if target.client_key is not None else cert_text
    if "PRIVATE KEY-----" not in key_text:
        hint = "" if target.client_key is not None else " (put the key in it or set CLIENT_KEY)"
        raise ClientCertificateProblem(key_field, f"{key_path} holds no PEM private key{hint}")
    encrypted = "ENCRYPTED" in key_text
    if encrypted and password is None:
        raise _encrypted(key_field, key_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    key = str(target.client_key) if target.client_key is not None else None
    try:
        context.load_cert_chain(str(target.client_cert), key, password=_password_of(password))
    except _NoPassword:
        raise _encrypted(key_field, key_path) from None
    except ssl.SSLError as exc:
        reason = getattr(exc, "reason", None)
        if reason == "KEY_VALUES_MISMATCH":
            message = f"{key_path} is not the key of the certificate in {target.client_cert}"
        elif encrypted:
            raise ClientCertificateProblem(
                "client_key_password_secret", f"the secret is not the password of {key_path}"
            ) from None
        else:
            message = f"{key_path} holds no usable PEM private key ({reason or exc})"
        raise ClientCertificateProblem(key_field, message) from None
    except OSError as exc:
        raise ClientCertificateProblem(
            key_field, f"cannot load {key_path}: {exc.strerror or exc}"
        ) from None
