"""Servers for the network-option tests, on loopback, in the test's own event loop.

Both speak the same paths: ``/hello`` answers the server's ``text``, ``/family`` the IP family
of the address the client reached (``v4`` or ``v6``), ``/silent`` nothing, ever,
``/sized/<n>`` a body of
``n`` bytes, ``/endless`` a body that never ends (sent as fast as the client takes it, so never
more than the socket buffers and flow control allow). :class:`Http1Server` is HTTP/1.1 with
keep-alive (``/endless`` chunked); :class:`H2Server` is HTTP/2 over TLS (ALPN ``h2``). Each
counts the connections it accepted; a server can listen on several hosts with one port number.

``python -m tests.http.net_servers http1|http2 [CERT_AND_KEY_PEM]`` serves on 127.0.0.1 in a
process of its own (for memory measurements of the client alone) until terminated, after
printing ``listening on <url>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from types import TracebackType
from typing import Self

import h2.config
import h2.connection
import h2.events
import h2.exceptions

CHUNK = b"x" * 65536
ENDLESS = -1  # bytes left to send on an endless stream
SILENT = -2  # never answer


def has_ipv6_loopback() -> bool:
    """Tell whether this machine can listen on ::1 (some CI containers have no IPv6)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def family_of(transport: asyncio.BaseTransport) -> bytes:
    """Return ``v4`` or ``v6``: the family of the local address a connection was accepted on."""
    return b"v6" if ":" in str(transport.get_extra_info("sockname")[0]) else b"v4"


def body_size(path: str) -> int:
    """Return the body size a path asks for (``ENDLESS`` for ``/endless``)."""
    if path.startswith("/endless"):
        return ENDLESS
    if path.startswith("/silent"):
        return SILENT
    if path.startswith("/sized/"):
        return int(path.split("/")[2])
    return 0


class _Listeners:
    """Listening sockets on one port number for several hosts; servers started by subclasses."""

    def __init__(self, hosts: tuple[str, ...], text: str) -> None:
        self.hosts = hosts
        self.text = text
        self.port = 0
        self.accepted = 0
        self._servers: list[asyncio.Server] = []
        self.transports: list[asyncio.Transport] = []  # of accepted connections

    async def __aenter__(self) -> Self:
        for _ in range(20):  # another process may hold the port number on the second host
            with contextlib.suppress(OSError):
                await self._listen()
                return self
            await self._close()
        raise AssertionError(f"no common free port on {self.hosts}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    async def _listen(self) -> None:
        port = 0
        for host in self.hosts:
            server = await self._start(host, port)
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
        self.port = port

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self.transports:
            transport.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []

    async def _start(self, host: str, port: int) -> asyncio.Server:
        raise NotImplementedError


class Http1Server(_Listeners):
    """HTTP/1.1 with keep-alive on ``hosts`` (one port number)."""

    async def _start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._serve, host, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.transports.append(writer.transport)  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode("ascii")
                size = body_size(path)
                if size == SILENT:
                    while await reader.read(65536):
                        pass
                    return
                if size == ENDLESS:
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    piece = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
                    while True:  # until the client goes away
                        writer.write(piece)
                        await writer.drain()
                body = b"x" * size if size else self.text.encode()
                if path == "/family":
                    body = family_of(writer.transport)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
            self.transports.remove(writer.transport)  # type: ignore[arg-type]


class H2Server(_Listeners):
    """HTTP/2 over TLS (ALPN h2) on ``hosts`` (one port number)."""

    def __init__(self, hosts: tuple[str, ...], text: str, context: ssl.SSLContext) -> None:
        super().__init__(hosts, text)
        self.context = context

    async def _start(self, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: _H2Protocol(self), host, port, ssl=self.context)


class _H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection: answers each stream, sending bodies as flow control allows."""

    def __init__(self, server: H2Server) -> None:
        self.server = server
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.left: dict[int, int] = {}  # stream -> bytes still to send (ENDLESS: forever)
        self.transport: asyncio.Transport | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.server.accepted += 1
        self.server.transports.append(transport)
        self.transport = transport
        self.h2.initiate_connection()
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None:
                path = dict(event.headers or []).get(b":path", b"/").decode("ascii")
                size = body_size(path)
                if size == SILENT:
                    continue
                body = b"" if size else self.server.text.encode()
                if path == "/family" and self.transport is not None:
                    body = family_of(self.transport)
                length = [] if size == ENDLESS else [("content-length", str(size or len(body)))]
                self.h2.send_headers(event.stream_id, [(":status", "200"), *length])
                if body:
                    self.h2.send_data(event.stream_id, body, end_stream=True)
                else:
                    self.left[event.stream_id] = size
            elif isinstance(event, h2.events.StreamReset) and event.stream_id is not None:
                self.left.pop(event.stream_id, None)
        self.pump()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()

    def pump(self) -> None:
        """Send what flow control and the socket buffer allow."""
        for stream_id, left in list(self.left.items()):
            while not self.paused and left != 0:
                window = self.h2.local_flow_control_window(stream_id)
                size = min(window, self.h2.max_outbound_frame_size, len(CHUNK))
                if left != ENDLESS:
                    size = min(size, left)
                if size <= 0:
                    break
                self.h2.send_data(stream_id, CHUNK[:size])
                left = left - size if left != ENDLESS else ENDLESS
                self.flush()
            if left == 0:
                self.h2.end_stream(stream_id)
                del self.left[stream_id]
            else:
                self.left[stream_id] = left
        self.flush()

    def flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.h2.data_to_send())

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.left.clear()
        with contextlib.suppress(ValueError):
            self.server.transports.remove(self.transport)  # type: ignore[arg-type]


async def _serve_forever(kind: str, cert_and_key: str | None) -> None:
    server: _Listeners
    if kind == "http2":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert_and_key))
        context.set_alpn_protocols(["h2"])
        server = H2Server(("127.0.0.1",), "hello", context)
    else:
        server = Http1Server(("127.0.0.1",), "hello")
    async with server:
        scheme = "https" if kind == "http2" else "http"
        print(f"listening on {scheme}://127.0.0.1:{server.port}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve_forever(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
