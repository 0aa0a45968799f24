"""Run the demo API inside another task group (the ``demo`` command, tests)."""

from __future__ import annotations

from typing import Any

import uvicorn

from synthetic_exporter.app.web import ReadyCallback, bind_socket, config_for, run_server
from synthetic_exporter.demo.api import create_app


def demo_config(app: Any) -> uvicorn.Config:
    """Return the demo's uvicorn settings: quiet, no ``Server: uvicorn`` (the origin says S3)."""
    return config_for(app, server_header=False)


async def serve_demo(host: str, port: int, on_ready: ReadyCallback | None = None) -> None:
    """Serve a fresh demo API until cancelled; ``on_ready(port)`` once listening.

    Needs the asyncio backend (uvicorn is asyncio-only). Installs no signal handlers.
    """
    await run_server(demo_config(create_app()), bind_socket(host, port), on_ready)
