"""The benchmark's TLS: one ``trustme`` CA and one certificate for ``127.0.0.1``, as PEM files.

The target serves HTTPS with this certificate; blackbox_exporter (its module's
``tls_config.ca_file``) and the agent (the target's ``ca_bundle``) trust the same CA file, so
both verify the same chain on the same host. trustme's default key type: ECDSA P-256.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the CA certificate, the server's chain and its private key are."""

    ca: Path
    chain: Path
    key: Path


def write_tls_files(directory: Path) -> TlsFiles:
    """Make a fresh CA and a server certificate for :data:`HOSTS`; write them to ``directory``."""
    import trustme  # a dev dependency; imported here so that the target does not load it

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(*HOSTS)
    files = TlsFiles(directory / "ca.pem", directory / "chain.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(files.ca)
    files.chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(files.key)
    return files


def server_context(chain: Path, key: Path) -> ssl.SSLContext:
    """Return the target's server-side context for ``chain`` and ``key``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    return context
