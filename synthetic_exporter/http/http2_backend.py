"""httpcore's network backend, with name resolution timed (for HTTP/2 targets only).

Targets with ``http2`` run on httpx's own transport (httpcore), which resolves names inside
``connect_tcp``, out of sight of its trace hook. This backend resolves first (timed, as the
``resolve`` phase of the running request's :class:`~synthetic_exporter.http.timing.RequestTimer`),
then connects to the addresses in order. It is imported only when such a target exists, so
that httpcore and h2 stay out of the process otherwise.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore

from synthetic_exporter.http.timing import ACTIVE_REQUEST
from synthetic_exporter.http.transport import is_ip_address


class TimedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that resolves names itself (timed), then connects to the addresses."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host`` (timed), then connect to its addresses in order."""
        if is_ip_address(host):
            addresses = [host]
        else:
            start = time.monotonic()
            try:
                with anyio.fail_after(timeout):
                    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            timer = ACTIVE_REQUEST.get()
            if timer is not None:
                resolved = time.monotonic()
                timer.resolve_seconds = resolved - start
                timer.marks["connect.start"] = resolved  # httpcore's mark included resolving
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to a Unix socket (untimed)."""
        return await self.inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Sleep."""
        await self.inner.sleep(seconds)
