"""``python -m synthetic_exporter.demo --host 127.0.0.1 --port 0``: serve the demo API.

``python -m synthetic_exporter.demo --openapi PATH`` writes its OpenAPI document and exits.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio

from synthetic_exporter.app.web import bind_socket, run_server
from synthetic_exporter.demo.api import create_app
from synthetic_exporter.demo.openapi import openapi_json
from synthetic_exporter.demo.server import demo_config


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``--host``, ``--port`` and ``--openapi`` (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(prog="python -m synthetic_exporter.demo")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    parser.add_argument(
        "--openapi", type=Path, metavar="PATH", help="write the OpenAPI document here and exit"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, printing one ``listening on`` line once ready."""
    args = parse_args(argv)
    if args.openapi is not None:
        args.openapi.write_bytes(openapi_json())
        return
    host: str = args.host
    shown = f"[{host}]" if ":" in host else host

    def announce(port: int) -> None:
        print(f"demo API listening on http://{shown}:{port}", flush=True)

    sock = bind_socket(host, args.port)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT after shutdown
        anyio.run(partial(run_server, demo_config(create_app()), sock, announce, embedded=False))


if __name__ == "__main__":
    main()
