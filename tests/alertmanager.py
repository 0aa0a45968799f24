"""A real Alertmanager (Debian package) on 127.0.0.1 for tests, and a webhook that records it."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.conftest import stop_process
from tests.prometheus import free_port, require, wait_until_ready

ALERTMANAGER = "prometheus-alertmanager"


@dataclass
class Alertmanager:
    """A running Alertmanager process."""

    address: str  # host:port, for Prometheus' alerting config
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """Return the base URL."""
        return f"http://{self.address}"

    def alerts(self) -> list[dict[str, Any]]:
        """Return the alerts it holds, with their state (active, suppressed) and inhibitors."""
        r = httpx.get(f"{self.url}/api/v2/alerts", timeout=10)
        r.raise_for_status()
        return list(r.json())

    def stop(self) -> None:
        """Terminate by PID and wait."""
        stop_process(self.process)


def start_alertmanager(workdir: Path, config: Path) -> Alertmanager:
    """Start Alertmanager with ``config`` on a free port of 127.0.0.1; wait until ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [
            require(ALERTMANAGER),
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port on all interfaces
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    alertmanager = Alertmanager(f"127.0.0.1:{port}", process)
    wait_until_ready(f"{alertmanager.url}/-/ready", process, alertmanager.stop)
    return alertmanager


@dataclass(frozen=True)
class Notification:
    """One notification Alertmanager POSTed: the receiver (the URL's path) and the JSON body."""

    receiver: str
    body: dict[str, Any]

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Return the notified alerts whose labels include ``labels``."""
        return [
            a
            for a in self.body.get("alerts", [])
            if all(a["labels"].get(k) == v for k, v in labels.items())
        ]


class Webhook:
    """An HTTP server on 127.0.0.1 that records every JSON body POSTed to it.

    Example::

        with Webhook() as webhook:
            url = f"{webhook.url}/pager"  # a receiver's webhook_configs url
            notification = webhook.wait_for(lambda n: bool(n.alerts(alertname="X")))
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Notification] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._record))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Return the base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def notifications(self) -> list[Notification]:
        """Return what was received so far, oldest first."""
        with self._lock:
            return list(self._received)

    def wait_for(
        self, matches: Callable[[Notification], bool], seconds: float = 60
    ) -> Notification:
        """Poll (bounded) until a notification ``matches``; return the first that does."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = next((n for n in self.notifications() if matches(n)), None)
            if found:
                return found
            time.sleep(0.2)
        received = [
            (n.receiver, n.body.get("status"), n.body.get("groupLabels"))
            for n in self.notifications()
        ]
        raise AssertionError(f"no matching notification within {seconds}s; got {received}")

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Webhook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _record(self, receiver: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._received.append(Notification(receiver, body))


def _handler(record: Callable[[str, dict[str, Any]], None]) -> type[BaseHTTPRequestHandler]:
    """Return a request handler class that passes each POST's path and JSON body to ``record``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            record(self.path.strip("/"), json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
