"""A target's TLS context and the start-up check of its client certificate, with real files."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from synthetic_exporter.core.settings import TargetSettings
from synthetic_exporter.http.tls import (
    ClientCertificateProblem,
    check_client_certificate,
    handshake_problem,
    server_names,
    tls_context,
)

PASSWORD = "s3cret-key-pw-19"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Path:
    """A client certificate and keys (its own, another's, encrypted), and files that are not."""
    tmp = tmp_path_factory.mktemp("client-certs")
    client = ca.issue_cert("client.test")
    client.cert_chain_pems[0].write_to_path(str(tmp / "client.crt"))
    client.private_key_pem.write_to_path(str(tmp / "client.key"))
    ca.issue_cert("other.test").private_key_pem.write_to_path(str(tmp / "other.key"))
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
    (tmp / "encrypted.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    (tmp / "notes.txt").write_text("neither a certificate nor a key\n")
    return tmp


def target(**options: object) -> TargetSettings:
    return TargetSettings(base_url="https://api.example.com", **options)


def problem(settings: TargetSettings, password: str | None = None) -> tuple[str, str]:
    with pytest.raises(ClientCertificateProblem) as raised:
        check_client_certificate(settings, password)
    return raised.value.field, str(raised.value)


def test_a_matching_certificate_and_key_pass(files: Path) -> None:
    check_client_certificate(
        target(client_cert=files / "client.crt", client_key=files / "client.key"), None
    )
    check_client_certificate(
        target(client_cert=files / "client.crt", client_key=files / "encrypted.key"), PASSWORD
    )
    check_client_certificate(target(), None)  # no client certificate: nothing to check


@pytest.mark.parametrize(
    ("cert", "key", "password", "field", "message"),
    [
        ("missing.crt", None, None, "client_cert", "missing.crt does not exist"),
        (".", None, None, "client_cert", "is a directory: give a PEM file"),
        ("notes.txt", None, None, "client_cert", "notes.txt holds no PEM certificate"),
        ("client.key", None, None, "client_cert", "holds no PEM certificate"),
        (
            "client.crt",
            None,
            None,
            "client_cert",
            "client.crt holds no PEM private key (put the key in it or set CLIENT_KEY)",
        ),
        ("client.crt", "missing.key", None, "client_key", "missing.key does not exist"),
        ("client.crt", "notes.txt", None, "client_key", "notes.txt holds no PEM private key"),
        (
            "client.crt",
            "other.key",
            None,
            "client_key",
            "other.key is not the key of the certificate in",
        ),
        (
            "client.crt",
            "encrypted.key",
            None,
            "client_key",
            "encrypted.key is encrypted: name the secret holding its password in"
            " CLIENT_KEY_PASSWORD_SECRET",
        ),
        (
            "client.crt",
            "encrypted.key",
            "wrong-password",
            "client_key_password_secret",
            "the secret is not the password of",
        ),
    ],
)
def test_a_client_certificate_that_cannot_be_used_names_its_setting(
    files: Path, cert: str, key: str | None, password: str | None, field: str, message: str
) -> None:
    settings = target(client_cert=files / cert, client_key=files / key if key is not None else None)
    found_field, found = problem(settings, password)
    assert (found_field, message in found) == (field, True), found
    assert "wrong-password" not in found
    assert PASSWORD not in found


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_key_is_named(files: Path, tmp_path: Path) -> None:
    key = tmp_path / "locked.key"
    key.write_bytes((files / "client.key").read_bytes())
    key.chmod(0)
    field, message = problem(target(client_cert=files / "client.crt", client_key=key))
    assert (field, message) == ("client_key", f"cannot read {key}: Permission denied")


def test_the_context_carries_the_versions_and_the_client_certificate(files: Path) -> None:
    context = tls_context(
        target(
            client_cert=files / "client.crt",
            client_key=files / "encrypted.key",
            min_tls_version="TLS12",
            max_tls_version="TLS12",
        ),
        PASSWORD,
    )
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.maximum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED


def test_old_versions_are_really_allowed_when_asked_for() -> None:
    """OpenSSL 3 refuses TLS 1.0/1.1 at its default security level: asking for them lowers it."""
    default = tls_context(target())
    assert default.minimum_version is ssl.TLSVersion.TLSv1_2  # Python's default
    old = tls_context(target(max_tls_version="TLS11"))
    assert old.minimum_version is ssl.TLSVersion.TLSv1
    assert old.maximum_version is ssl.TLSVersion.TLSv1_1
    assert any(c["name"] == "ECDHE-RSA-AES128-SHA" for c in old.get_ciphers())


def test_verification_off_keeps_the_client_certificate(files: Path) -> None:
    context = tls_context(
        target(verify=False, client_cert=files / "client.crt", client_key=files / "client.key")
    )
    assert context.verify_mode is ssl.CERT_NONE
    assert not context.check_hostname


def test_the_server_name_replaces_the_base_url_host_only() -> None:
    assert server_names(target()) == {}
    named = TargetSettings(base_url="https://10.0.12.7:8443/v1", server_name="api.internal")
    assert server_names(named) == {"10.0.12.7": "api.internal"}


def test_handshake_problems_are_explained_and_others_left_alone() -> None:
    request = httpx.Request("GET", "https://api.example.com:8443/x")
    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version")
    alert.reason = "TLSV1_ALERT_PROTOCOL_VERSION"
    error = httpx.ConnectError(str(alert), request=request)
    error.__cause__ = alert
    assert handshake_problem(error) == (
        "TLS handshake with api.example.com:8443 failed: no TLS version in common with the"
        " server (see MIN_TLS_VERSION/MAX_TLS_VERSION): [SSL: TLSV1_ALERT_PROTOCOL_VERSION]"
        " tlsv1 alert protocol version"
    )
    other = ssl.SSLError(1, "[SSL: SOMETHING_ELSE] something else")
    other.reason = "SOMETHING_ELSE"
    assert handshake_problem(other) is None
    assert handshake_problem(ValueError("no TLS here")) is None
