"""A real nginx (Debian's ``nginx`` package) in the foreground, for tests, on 127.0.0.1.

Everything nginx writes (pid, error log, temporary files) goes into the test's directory, and it
runs as the current user: nginx needs root only for ports below 1024 or a ``user`` directive,
which it gets only when the tests run as root (then its workers would otherwise be ``nobody``,
who cannot enter pytest's private directories).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


def available() -> bool:
    """Tell whether nginx is installed."""
    return Path(NGINX).is_file()


def free_port() -> int:
    """Return a port of 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Nginx:
    """A running nginx and its error log."""

    process: subprocess.Popen[bytes]
    directory: Path

    def error_log(self) -> str:
        """Return what nginx logged so far."""
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _config(directory: Path, servers: str) -> str:
    temp = [
        f"{kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    ]
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
    return "\n".join(
        [
            "daemon off;",
            user,
            "worker_processes 1;",
            f"pid {directory / 'nginx.pid'};",
            f"error_log {directory / 'error.log'} info;",
            "events { worker_connections 64; }",
            "http {",
            "  access_log off;",
            *(f"  {line}" for line in temp),
            servers,
            "}",
            "",
        ]
    )


def _wait_for(process: subprocess.Popen[bytes], ports: list[int], directory: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    waiting = list(ports)
    while waiting and time.monotonic() < deadline:
        if process.poll() is not None:
            log = (directory / "error.log").read_text(errors="replace")
            raise AssertionError(f"nginx exited with {process.returncode}:\n{log}")
        try:
            socket.create_connection(("127.0.0.1", waiting[0]), timeout=1).close()
            waiting.pop(0)
        except OSError:
            time.sleep(0.05)
    if waiting:
        raise AssertionError(f"nginx did not listen on {waiting} within {START_TIMEOUT_SECONDS} s")


@contextmanager
def running_nginx(directory: Path, servers: str, ports: list[int]) -> Iterator[Nginx]:
    """Run nginx with the ``server`` blocks ``servers`` until the block ends.

    ``ports`` are the ports the blocks listen on (waited for, bounded).
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "nginx.conf"
    config.write_text(_config(directory, servers), encoding="utf-8")
    output = (directory / "stderr.log").open("wb")
    process = subprocess.Popen(
        [NGINX, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(config)],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(process, ports, directory)
        yield Nginx(process, directory)
    finally:
        process.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()
