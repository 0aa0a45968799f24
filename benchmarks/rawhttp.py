"""A minimal HTTP/1.1 client on asyncio streams.

The harness drives the blackbox exporter and scrapes ``/metrics`` with it, so that its own cost
stays small next to what it measures; the agent worker also uses it as the raw-asyncio
reference (the floor for Python here). It speaks just enough HTTP/1.1 for that:
``Content-Length``, chunked and close-delimited bodies, keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Response:
    """A response read in full; header names are lower case."""

    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class HttpError(Exception):
    """The server answered something this client cannot read."""


def split_url(url: str) -> tuple[str, int, str]:
    """Return host, port and path (with query) of an http:// URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"not an http:// URL: {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, parts.port or 80, path


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one response (head and body) from ``reader``."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise HttpError(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                break
            chunks.append(await reader.readexactly(size + 2))
        body = b"".join(c[:-2] for c in chunks)
    else:
        body = await reader.read()
        keep_alive = False
    return Response(int(status_line[1]), headers, body, keep_alive)


class Connection:
    """One keep-alive connection to ``host:port``, reopened when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Response:
        """Send one request and read its response."""
        if self.writer is None or self.reader is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        try:
            response = await read_response(self.reader)
        except BaseException:
            await self.close()
            raise
        if not response.keep_alive:
            await self.close()
        return response

    async def get(self, path: str, headers: Mapping[str, str] | None = None) -> Response:
        """``GET path``."""
        return await self.request("GET", path, headers)

    async def close(self) -> None:
        """Close the connection (if open)."""
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def get(url: str, headers: Mapping[str, str] | None = None) -> Response:
    """``GET url`` on a connection of its own."""
    host, port, path = split_url(url)
    connection = Connection(host, port)
    try:
        return await connection.get(path, headers)
    finally:
        await connection.close()
