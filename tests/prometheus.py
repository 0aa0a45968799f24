"""A real Prometheus (Debian package) on 127.0.0.1 for tests, and a small query client."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import stop_process

PROMETHEUS = "prometheus"
READY_TIMEOUT_SECONDS = 30


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require(binary: str) -> str:
    """Return a binary's path, or fail saying how to install it."""
    path = shutil.which(binary)
    assert path, f"{binary} is not installed: run `make system-deps`"
    return path


@dataclass
class Prometheus:
    """A running Prometheus process."""

    url: str
    process: subprocess.Popen[bytes]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Return the result vector of an instant query."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        data = r.json()["data"]
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def wait_for(self, expr: str, seconds: float = 30) -> list[dict[str, Any]]:
        """Poll (bounded) until ``expr`` returns a non-empty vector; return it."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"no result for {expr!r} within {seconds}s")

    def stop(self) -> None:
        """Terminate by PID and wait."""
        stop_process(self.process)


def start_prometheus(
    workdir: Path,
    scrape_targets: list[str],
    rule_files: list[Path] | None = None,
    alertmanager: str | None = None,
    interval: str = "1s",
    features: Sequence[str] = (),
) -> Prometheus:
    """Start Prometheus scraping ``host:port`` targets every ``interval``; wait until ready.

    ``features`` are ``--enable-feature`` values, e.g. ``exemplar-storage``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    lines = [
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "scrape_configs:",
        "  - job_name: synthetic-exporter",
        "    static_configs:",
        f"      - targets: [{', '.join(repr(t) for t in scrape_targets)}]",
    ]
    if rule_files:
        lines += ["rule_files:", *(f"  - {f}" for f in rule_files)]
    if alertmanager:
        lines += [
            "alerting:",
            "  alertmanagers:",
            "    - static_configs:",
            f"        - targets: ['{alertmanager}']",
        ]
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    process = subprocess.Popen(
        [
            require(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *(f"--enable-feature={feature}" for feature in features),
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process)
    wait_until_ready(f"{prometheus.url}/-/ready", process, prometheus.stop)
    return prometheus


def wait_until_ready(url: str, process: subprocess.Popen[bytes], stop: Callable[[], None]) -> None:
    """Poll a readiness URL (bounded) while the process lives; stop it if it never gets ready."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"{url}: the server exited at start-up"
        time.sleep(0.2)
    stop()
    raise AssertionError(f"{url} did not become ready")
