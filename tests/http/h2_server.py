"""A small HTTP/2-only test server (h2 over TLS, ALPN ``h2``) on its own event loop in a thread."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import h2.config
import h2.connection
import h2.events

STOP_TIMEOUT_SECONDS = 10
# What a responder answers a request with: status, more headers, body.
Answer = tuple[int, list[tuple[str, str]], bytes]
Responder = Callable[[dict[str, str]], Answer]


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection: every request (its headers, decoded) gets ``respond``'s answer."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None:
                headers = {
                    (k.decode() if isinstance(k, bytes) else k): (
                        v.decode() if isinstance(v, bytes) else v
                    )
                    for k, v in event.headers or []
                }
                status, more, body = self.respond(headers)
                sent = [(":status", str(status)), ("content-length", str(len(body))), *more]
                self.h2.send_headers(event.stream_id, sent)
                self.h2.send_data(event.stream_id, body, end_stream=True)
        self.transport.write(self.h2.data_to_send())


@contextmanager
def serve_h2(respond: Responder, context: ssl.SSLContext) -> Iterator[str]:
    """Serve ``respond`` over HTTP/2 with TLS on 127.0.0.1; yield ``https://localhost:<port>``."""
    context.set_alpn_protocols(["h2"])
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: H2Protocol(respond), "127.0.0.1", 0, ssl=context)
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.sockets[0].getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=STOP_TIMEOUT_SECONDS)
        server.close()
        loop.close()
