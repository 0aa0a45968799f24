"""The benchmark's target: a minimal HTTP/1.1 server on a raw asyncio protocol, with a delay.

It must not be the bottleneck, so it is as small as a Python server gets: no framework, no
header parsing beyond ``Connection`` and ``Content-Length``, keep-alive unless the client asks
to close. Its CPU is reported with every throughput figure.

Routes:

- ``GET /delay/{ms}`` and ``GET /delay/{ms}/{id}``: answer ``200 ok`` after ``ms``
  milliseconds. With an ``id``, the server keeps how long it really held the request (on its own
  monotonic clock, from the request head parsed to the response about to be written): asyncio timers
  round up to the millisecond, so the nominal delay is not the true server time. Added latency
  is measured against this held time.
- ``GET /held?ids=a,b``: the held seconds of those ids as JSON (and forgets them).
- anything else: ``404``.

Run: ``python -m benchmarks.target --port 0``; prints ``listening on http://127.0.0.1:PORT``.
With ``--tls-port N --tls-chain PEM --tls-key PEM`` it also serves the same routes over HTTPS on
port ``N`` (same process, same held times: ``/held`` on either listener answers for both).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import ssl
import time
from pathlib import Path

from benchmarks.tls import server_context

MAX_HEAD = 64 * 1024
MAX_HELD = 200_000
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)")
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found"
)


class Held:
    """How long the server held each request that carried an id (bounded)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, key: str, seconds: float) -> None:
        if len(self.seconds) >= MAX_HELD:
            for old in list(self.seconds)[: MAX_HELD // 2]:
                del self.seconds[old]
        self.seconds[key] = seconds

    def take(self, keys: list[str]) -> dict[str, float]:
        return {k: self.seconds.pop(k) for k in keys if k in self.seconds}


class Connection(asyncio.Protocol):
    """One client connection: requests answered one at a time, in order."""

    def __init__(self, held: Held) -> None:
        self.held = held
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self.transport.close()
                return
            head = bytes(self.buffer[:end]).lower()
            match = CONTENT_LENGTH.search(head)
            size = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < size:
                return
            del self.buffer[:size]
            self._handle(head)

    def _handle(self, head: bytes) -> None:
        started = time.monotonic()
        line = head.split(b"\r\n", 1)[0].split()
        path = line[1].decode("latin-1") if len(line) >= 2 else "/"
        close = b"\r\nconnection: close" in head or (len(line) >= 3 and line[2] == b"http/1.0")
        parts = path.split("?", 1)[0].strip("/").split("/")
        if parts[0] == "delay" and len(parts) in (2, 3) and parts[1].isdigit():
            key = parts[2] if len(parts) == 3 else None
            delay = int(parts[1]) / 1000
            self.busy = True
            if delay <= 0:
                self._respond(OK, close, key, started)
            else:
                loop = asyncio.get_running_loop()
                self.timer = loop.call_later(delay, self._respond, OK, close, key, started)
        elif parts[0] == "held":
            query = path.split("?", 1)[1] if "?" in path else ""
            keys = [k for k in query.removeprefix("ids=").split(",") if k]
            body = json.dumps(self.held.take(keys)).encode()
            head_out = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
            )
            self.busy = True
            self._respond(head_out + body, close, None, started)
        else:
            self.busy = True
            self._respond(NOT_FOUND, close, None, started)

    def _respond(self, response: bytes, close: bool, key: str | None, started: float) -> None:
        self.timer = None
        self.busy = False
        if self.transport is None:
            return
        if key is not None:
            # Before writing: once written, the client may run (and finish) before we do.
            self.held.add(key, time.monotonic() - started)
        self.transport.write(response)
        if close:
            self.transport.close()
        else:
            self._next()


async def serve(
    host: str, port: int, tls_port: int | None = None, tls: ssl.SSLContext | None = None
) -> None:
    """Serve until SIGTERM or SIGINT (and over HTTPS on ``tls_port`` when given)."""
    loop = asyncio.get_running_loop()
    held = Held()
    server = await loop.create_server(
        lambda: Connection(held), host, port, backlog=4096, reuse_address=True
    )
    servers = [server]
    if tls_port is not None and tls is not None:
        servers.append(
            await loop.create_server(
                lambda: Connection(held), host, tls_port, backlog=4096, reuse_address=True, ssl=tls
            )
        )
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for each in servers:
            each.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-port", type=int, default=None)
    parser.add_argument("--tls-chain", type=Path, default=None)
    parser.add_argument("--tls-key", type=Path, default=None)
    args = parser.parse_args()
    tls = server_context(args.tls_chain, args.tls_key) if args.tls_chain is not None else None
    asyncio.run(serve(args.host, args.port, args.tls_port, tls))


if __name__ == "__main__":
    main()
