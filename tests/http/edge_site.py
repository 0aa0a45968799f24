"""A CloudFront-like HTTP(S) server on 127.0.0.1 in a thread, for the instrumentation tests.

``/delay/<ms>`` waits, then answers; anything else answers at once; every answer carries
CloudFront's cache headers (a hit at LHR). Every request's path and ``traceparent`` header are
kept in :attr:`EdgeHandler.seen`.
"""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar


class EdgeHandler(http.server.BaseHTTPRequestHandler):
    """Answers GETs with a 20 kB body and CloudFront's headers, after ``/delay/<ms>``."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("traceparent")))
        if self.path.startswith("/delay/"):
            time.sleep(int(self.path.split("/")[2].split("?")[0]) / 1000)
        body = b"x" * 20_000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Cache", "Hit from cloudfront")
        self.send_header("X-Amz-Cf-Pop", "LHR61-P1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Stay quiet."""


@dataclass
class Site:
    """A server on 127.0.0.1 and the URL to reach it (by the name localhost)."""

    url: str
    server: http.server.ThreadingHTTPServer


def serve(context: ssl.SSLContext | None) -> Site:
    """Serve :class:`EdgeHandler` on a free port, with TLS when ``context`` is given."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EdgeHandler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if context else "http"
    return Site(f"{scheme}://localhost:{server.server_address[1]}", server)


@contextmanager
def serving(context: ssl.SSLContext | None) -> Iterator[Site]:
    """Serve as :func:`serve` does while the block runs; then stop the server."""
    site = serve(context)
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()
