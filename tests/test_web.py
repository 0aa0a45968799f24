"""The embedded uvicorn server's settings."""

from __future__ import annotations

from tests.conftest import fresh_python


def test_server_loads_no_websocket_implementation() -> None:
    """The agent serves no WebSockets, so uvicorn must not import one (memory it saves)."""
    probe = """
import sys
from synthetic_exporter.web import config_for

async def app(scope, receive, send):
    pass

config = config_for(app)
config.load()
print(config.ws, "websockets" in sys.modules, "wsproto" in sys.modules)
"""
    assert fresh_python(probe) == ["none", "False", "False"]
