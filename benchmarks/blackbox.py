"""The blackbox exporter driver: start Debian's ``prometheus-blackbox-exporter`` on 127.0.0.1
with a config of our own, probe through ``/probe?target=...&module=http_2xx`` (or
``http_2xx_tls``: HTTPS, trusting the benchmark's CA file) and read ``probe_duration_seconds``
and ``probe_http_duration_seconds{phase=...}``. Every probe connects afresh (TLS handshake
included)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from benchmarks import procs, rawhttp

BINARY = "/usr/bin/prometheus-blackbox-exporter"
CONFIG = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""
TLS_MODULE = """\
  http_2xx_tls:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      fail_if_not_ssl: true
      tls_config:
        ca_file: {ca_file}
"""
HTTP = "http_2xx"
HTTPS = "http_2xx_tls"
SAMPLE = re.compile(rb'^(probe_[a-z_]+)(?:\{phase="([a-z]+)"\})? ([0-9.eE+-]+)$', re.MULTILINE)
START_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe's result as the exporter reported it."""

    success: bool
    duration: float
    phases: dict[str, float]


def parse_probe(body: bytes) -> Probe:
    """Read ``probe_success``, ``probe_duration_seconds`` and the HTTP phases of a probe."""
    values: dict[str, float] = {}
    phases: dict[str, float] = {}
    for name, phase, value in SAMPLE.findall(body):
        if name == b"probe_http_duration_seconds" and phase:
            phases[phase.decode()] = float(value)
        elif not phase:
            values[name.decode()] = float(value)
    return Probe(
        values.get("probe_success") == 1.0, values.get("probe_duration_seconds", 0.0), phases
    )


def version() -> str:
    """Return the exporter's version (e.g. ``0.23.0``), or ``not installed``."""
    try:
        done = subprocess.run([BINARY, "--version"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "not installed"
    match = re.search(r"version (\S+)", done.stdout + done.stderr)
    return match.group(1) if match else "unknown"


@dataclass
class Blackbox:
    """A running blackbox exporter."""

    child: procs.Child
    host: str
    port: int

    @classmethod
    async def start(cls, workdir: Path, ca_file: Path | None = None) -> Blackbox:
        """Start the exporter on a free port of 127.0.0.1 and wait (bounded) until healthy.

        With ``ca_file``, the ``http_2xx_tls`` module trusts it (and only it).
        """
        config = workdir / "blackbox.yml"
        config.write_text(CONFIG + (TLS_MODULE.format(ca_file=ca_file) if ca_file else ""))
        port = procs.free_port()
        args = [
            BINARY,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        child = await procs.start("blackbox_exporter", args, workdir / "blackbox.log")
        blackbox = cls(child, "127.0.0.1", port)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and child.process.returncode is None:
            try:
                if (await rawhttp.get(f"http://127.0.0.1:{port}/-/healthy")).status == 200:
                    return blackbox
            except OSError:
                pass
            await asyncio.sleep(0.05)
        await procs.stop(child)
        raise RuntimeError(f"blackbox_exporter did not start (see {workdir / 'blackbox.log'})")

    def connection(self) -> rawhttp.Connection:
        """Return a keep-alive connection to the exporter (as Prometheus would hold)."""
        return rawhttp.Connection(self.host, self.port)

    async def probe(self, connection: rawhttp.Connection, target: str, module: str = HTTP) -> Probe:
        """Probe ``target`` with ``module`` (``http_2xx`` or ``http_2xx_tls``)."""
        return parse_probe(await self.probe_body(connection, target, module))

    async def probe_body(
        self, connection: rawhttp.Connection, target: str, module: str = HTTP
    ) -> bytes:
        """Return the ``/probe`` response body (uncompressed text exposition)."""
        query = urlencode({"target": target, "module": module})
        response = await connection.get(f"/probe?{query}")
        if response.status != 200:
            raise RuntimeError(f"/probe answered {response.status}: {response.body[:200]!r}")
        return response.body

    async def stop(self) -> None:
        await procs.stop(self.child)
