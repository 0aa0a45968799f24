"""Run the demo API inside another task group (the ``demo`` command, tests)."""

from __future__ import annotations

from synthetic_exporter.demo.api import create_app
from synthetic_exporter.web import ReadyCallback, bind_socket, config_for, run_server


async def serve_demo(host: str, port: int, on_ready: ReadyCallback | None = None) -> None:
    """Serve a fresh demo API until cancelled; ``on_ready(port)`` once listening.

    Needs the asyncio backend (uvicorn is asyncio-only). Installs no signal handlers.
    """
    await run_server(config_for(create_app()), bind_socket(host, port), on_ready)
