"""What-if prototype: httpx's API on a raw-asyncio HTTP/1.1 transport (not part of the agent).

It exists to measure one proposed design change: keep ``httpx.AsyncClient`` (what check
authors use) but replace httpcore under it with a transport whose pool hands out an idle
connection in O(1) (a deque per origin) and whose request path is a few stream calls. It speaks
plain ``http://`` only, buffers bodies and records no phases, so it is a lower bound on what
such a transport costs, not a drop-in replacement.
"""

from __future__ import annotations

from collections import defaultdict, deque

import httpx

from benchmarks.rawhttp import Connection

SKIPPED_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})


class RawTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams; ``keep_alive=False`` opens a connection per request."""

    def __init__(self, *, keep_alive: bool = True) -> None:
        self.keep_alive = keep_alive
        self.idle: defaultdict[tuple[str, int], deque[Connection]] = defaultdict(deque)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on an idle connection of its origin (or a new one)."""
        if request.url.scheme != "http":
            raise httpx.UnsupportedProtocol("the prototype speaks http:// only")
        origin = (request.url.host, request.url.port or 80)
        idle = self.idle[origin]
        connection = idle.pop() if idle else Connection(*origin)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIPPED_HEADERS}
        if not self.keep_alive:
            headers["Connection"] = "close"
        body = await request.aread()
        path = request.url.raw_path.decode("ascii")
        try:
            response = await connection.request(request.method, path, headers, body)
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        if self.keep_alive and response.keep_alive:
            idle.append(connection)
        else:
            await connection.close()
        return httpx.Response(
            response.status,
            headers=list(response.headers.items()),
            content=response.body,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close every idle connection."""
        for connections in self.idle.values():
            while connections:
                await connections.pop().close()
