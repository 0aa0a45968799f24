"""Serve an ASGI app with uvicorn inside the agent's own anyio task group.

uvicorn is the ASGI server: the most used one, asyncio-native like the agent, with httptools
for fast parsing (always: its protocol carries the agent's connection limits, see
:mod:`synthetic_exporter.app.http_limits`). Embedded, it installs no signal handlers (the agent
owns SIGTERM) and a cancellation of the surrounding task becomes a graceful shutdown.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import uvicorn

from synthetic_exporter.app.http_limits import Limits, current_limits, uvicorn_options

ReadyCallback = Callable[[int], None]
GRACEFUL_SHUTDOWN_SECONDS = 5


class EmbeddedServer(uvicorn.Server):
    """uvicorn with a readiness event; ``embedded`` leaves signals to the host program."""

    def __init__(self, config: uvicorn.Config, *, embedded: bool) -> None:
        super().__init__(config)
        self.embedded = embedded
        self.ready = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then signal readiness."""
        await super().startup(sockets=sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Capture signals only when running standalone."""
        if self.embedded:
            yield
            return
        with super().capture_signals():
            yield


def bind_socket(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket; port 0 picks a free port.

    The protocol is named (IPPROTO_TCP) so that asyncio sets TCP_NODELAY on accepted
    connections: without it Nagle's algorithm and delayed ACKs hold back small responses on
    kept-alive connections by about 40 ms.

    A name is resolved first (its IPv4 address if it has one). Whatever stops the bind (an
    unknown name, an address in use or not of this machine, a privileged port) raises
    :class:`~synthetic_exporter.app.startup_checks.ListenError`, whose message is one line.
    """
    from synthetic_exporter.app.startup_checks import ListenError, listen_problem

    try:
        found = socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(host, port, f"cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, address = next((a for a in found if a[0] == socket.AF_INET), found[0])
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise ListenError(host, port, listen_problem(host, port, exc)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenError(host, port, listen_problem(host, port, exc)) from None
    return sock


def config_for(app: Any, limits: Limits | None = None, **options: Any) -> uvicorn.Config:
    """Return quiet uvicorn settings for ``app``, with ``limits``.

    ``limits`` (the current ones by default: see :mod:`synthetic_exporter.app.http_limits`)
    bound header size, time and connections.
    """
    limited = uvicorn_options(current_limits() if limits is None else limits)
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",  # no WebSocket routes: importing an implementation would cost 0.6 MiB
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **{**limited, **options},
    )


async def run_server(
    config: uvicorn.Config,
    sock: socket.socket,
    on_ready: ReadyCallback | None = None,
    *,
    embedded: bool = True,
) -> None:
    """Serve on ``sock`` until the server exits or the task is cancelled (then shut down)."""
    server = EmbeddedServer(config, embedded=embedded)
    with sock:
        async with anyio.create_task_group() as group:
            group.start_soon(_watch, server, sock.getsockname()[1], on_ready)
            with anyio.CancelScope(shield=True):
                await server.serve(sockets=[sock])
            group.cancel_scope.cancel()


async def _watch(server: EmbeddedServer, port: int, on_ready: ReadyCallback | None) -> None:
    """Report readiness; on cancellation stop the server."""
    try:
        await server.ready.wait()
        if on_ready is not None:
            on_ready(port)
        await anyio.sleep_forever()
    finally:
        server.should_exit = True
