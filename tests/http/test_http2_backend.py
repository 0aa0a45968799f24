"""The HTTP/2 path's transport: httpx's behaviour from public httpcore parts, resolution timed."""

from __future__ import annotations

import socket
import ssl

import httpcore
import httpx
import pytest

from synthetic_exporter.http.http2_backend import Http2Transport, httpx_error
from synthetic_exporter.http.instrumentation import InstrumentedTransport
from synthetic_exporter.http.transport import Http11Transport


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (httpcore.ConnectError, httpx.ConnectError),
        (httpcore.ReadTimeout, httpx.ReadTimeout),
        (httpcore.PoolTimeout, httpx.PoolTimeout),
        (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
        (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    ],
)
def test_httpcore_errors_become_httpx_s_most_specific_error(
    theirs: type[Exception], ours: type[Exception]
) -> None:
    mapped = httpx_error(theirs("boom"))
    assert type(mapped) is ours
    assert str(mapped) == "boom"
    assert httpx_error(ValueError("not httpcore's")) is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_raises_httpx_connect_error() -> None:
    transport = Http2Transport(ssl.create_default_context())
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{_closed_port()}/")


async def test_the_transport_serves_a_request_and_is_traced() -> None:
    """A real request on 127.0.0.1 (HTTP/1.1: no TLS, so no ALPN) through the instrumented path."""
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    events: list[str] = []

    async def trace(event: str, info: dict[str, object]) -> None:
        events.append(event)

    inner = Http2Transport(ssl.create_default_context())
    instrumented = InstrumentedTransport("api", inner)
    assert instrumented.traced
    assert not InstrumentedTransport("api", Http11Transport()).traced
    try:
        async with httpx.AsyncClient(transport=inner) as client:
            response = await client.get(f"http://127.0.0.1:{port}/x", extensions={"trace": trace})
        assert (response.status_code, response.text) == (200, "hello")
        assert "connection.connect_tcp.complete" in events
        assert "http11.receive_response_body.complete" in events
    finally:
        server.close()
        await server.wait_closed()
