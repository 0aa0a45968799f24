"""A target's egress proxy: who it is, its credentials, and the CONNECT handshake with it.

Every request of a target with ``proxy_url`` goes through a tunnel (``CONNECT host:port``),
for https and plain http targets alike: the proxy only relays bytes, so TLS (its version, its
certificate) and the response headers (CDN attribution) are the target's own, and the time to
reach the target through the proxy is the ``proxy`` phase, apart from the target's TLS and
processing. Credentials (``user:password`` from a secret) go only into the ``CONNECT``
request's ``Proxy-Authorization`` header; they are never part of an error, a record or a repr.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httpx

# A proxy's answer to CONNECT larger than this is not an answer.
MAX_HEAD_BYTES = 64 * 1024
MAX_REASON_CHARS = 80


def basic_authorization(credentials: str) -> str:
    """Return the ``Basic`` header value (RFC 7617) of ``user:password`` credentials.

    The proxy's ``Proxy-Authorization`` and a target's ``basic_auth_secret`` are sent so.
    """
    return "Basic " + base64.b64encode(credentials.encode("latin-1")).decode("ascii")


@dataclass(frozen=True, slots=True)
class Proxy:
    """An http:// proxy reached by CONNECT; ``authorization`` is never shown."""

    host: str
    port: int
    authorization: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str, credentials: str | None = None) -> Proxy:
        """Return the proxy of a validated ``http://host[:port]`` URL (port 80 by default)."""
        parts = urlsplit(url)
        assert parts.hostname is not None
        authorization = None
        if credentials is not None:
            authorization = basic_authorization(credentials).encode("ascii")
        return cls(parts.hostname, parts.port or 80, authorization)

    @property
    def name(self) -> str:
        """``host:port``, as errors name the proxy."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def connect_request(self, host: str, port: int) -> bytes:
        """Return the ``CONNECT`` request opening a tunnel to ``host:port``."""
        authority = (f"[{host}]" if ":" in host else host).encode("ascii") + b":%d" % port
        lines = [b"CONNECT %s HTTP/1.1\r\n" % authority, b"Host: %s\r\n" % authority]
        if self.authorization is not None:
            lines.append(b"Proxy-Authorization: %s\r\n" % self.authorization)
        lines.append(b"\r\n")
        return b"".join(lines)


def parse_status(head: bytes) -> tuple[int, str]:
    """Return the status and (shortened, printable) reason of a proxy's response head."""
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.ProxyError("the proxy's answer to CONNECT is not an HTTP response")
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    reason = "".join(c for c in reason if c.isprintable())[:MAX_REASON_CHARS]
    return int(parts[1]), reason


class Handshake(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT``: its head, and nothing after it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Collect bytes until the end of the head."""
        if self.done.done():
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.done.set_result(bytes(self.buffer[: end + 4]))
        elif len(self.buffer) > MAX_HEAD_BYTES:
            self.done.set_exception(httpx.ProxyError("the proxy's answer to CONNECT is too long"))

    def eof_received(self) -> bool:
        """Fail the handshake: the proxy closed before answering."""
        self.connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the handshake if the head had not arrived."""
        if not self.done.done():
            reason = f": {exc}" if exc else ""
            self.done.set_exception(
                httpx.ProxyError(f"the proxy closed the connection before answering{reason}")
            )

    def leftover(self) -> bytes:
        """Return bytes received after the head (a well-behaved proxy sends none)."""
        head = self.done.result()
        return bytes(self.buffer[len(head) :])


async def open_tunnel(
    transport: asyncio.Transport, handshake: Handshake, proxy: Proxy, host: str, port: int
) -> None:
    """Send ``CONNECT host:port`` and wait for a 2xx answer; raise ``httpx.ProxyError`` if not."""
    transport.write(proxy.connect_request(host, port))
    try:
        status, reason = parse_status(await handshake.done)
    except httpx.ProxyError as exc:
        raise httpx.ProxyError(f"proxy {proxy.name}, CONNECT {host}:{port}: {exc}") from None
    if not 200 <= status < 300:
        raise httpx.ProxyError(
            f"proxy {proxy.name} refused CONNECT {host}:{port}: {status} {reason}".rstrip()
        )
    if handshake.leftover():
        raise httpx.ProxyError(f"proxy {proxy.name} sent data after accepting CONNECT")
