"""The embedded uvicorn server's settings."""

from __future__ import annotations

from typing import Any

import pytest

from synthetic_exporter.app.web import config_for
from tests.conftest import fresh_python


def test_server_loads_no_websocket_implementation() -> None:
    """The agent serves no WebSockets, so uvicorn must not import one (memory it saves)."""
    probe = """
import sys
from synthetic_exporter.app.web import config_for

async def app(scope, receive, send):
    pass

config = config_for(app)
config.load()
print(config.ws, "websockets" in sys.modules, "wsproto" in sys.modules)
"""
    assert fresh_python(probe) == ["none", "False", "False"]


def test_the_server_applies_the_http_limits() -> None:
    """httptools with the limits of :mod:`synthetic_exporter.app.http_limits`: the module's
    constants as they are when the server is configured, or the limits given."""
    from synthetic_exporter.app import http_limits
    from synthetic_exporter.app.http_limits import LimitedHttpProtocol, Limits

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = config_for(app)
    config.load()
    assert issubclass(config.http_protocol_class, LimitedHttpProtocol)
    assert config.http_protocol_class.limits == Limits()
    assert config.timeout_keep_alive == http_limits.KEEP_ALIVE_SECONDS
    given = Limits(header_bytes=100, keep_alive=1)
    config = config_for(app, given)
    config.load()
    assert issubclass(config.http_protocol_class, LimitedHttpProtocol)
    assert config.http_protocol_class.limits == given
    assert config.timeout_keep_alive == 1


@pytest.mark.slow
def test_by_default_headers_above_64_kib_get_431() -> None:
    import socket

    from tests.app.test_http_limits import read_all, serving

    async def app(scope: dict[str, object], receive: object, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    head = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: %s\r\n\r\n"
    with serving(app, None) as port:
        answers = []
        for pad in (60 * 1024, 65 * 1024):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(head % (b"p" * pad))
                answers.append(read_all(sock, 1)[:12])
    assert answers == [b"HTTP/1.1 204", b"HTTP/1.1 431"]
