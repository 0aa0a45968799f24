"""A target's network options: which IP family to try first, and how large a body may be.

Both transports take a :class:`NetworkOptions`. Addresses of a resolved name are put in the
order to try (:meth:`NetworkOptions.order`): the preferred family first, or that family only
when the target allows no fallback. A response body is counted as the transport receives it
(after chunked framing, before content decoding); past ``max_body_bytes`` the request fails with
:class:`ResponseTooLarge` and its connection is closed, never pooled again. A leaf both
transports use.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Literal

import httpx

IpProtocol = Literal["ip4", "ip6"]
VERSIONS: dict[str, int] = {"ip4": 4, "ip6": 6}


class ResponseTooLarge(httpx.TransportError):
    """A response body grew past its target's ``MAX_BODY_BYTES``; its connection was closed."""


class NoAddress(OSError):
    """A host has no address of the only IP family its target allows."""


def ip_version(address: str) -> int | None:
    """Return 4 or 6 for an IP address (an IPv6 zone index allowed), ``None`` for anything else."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).version
    except ValueError:
        return None


def format_size(size: int) -> str:
    """Return ``size`` bytes as people read it: ``10.0 MiB``, ``512.0 KiB``, ``100 bytes``."""
    if size >= 1024 * 1024 * 1024:
        return f"{size / (1024 * 1024 * 1024):.1f} GiB"
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


@dataclass(frozen=True, slots=True)
class NetworkOptions:
    """How a target's connections pick an address, and its response size limit (None: none)."""

    target: str = ""
    ip_protocol: IpProtocol | None = None
    ip_protocol_fallback: bool = True
    max_body_bytes: int | None = None

    def order(self, host: str, addresses: list[str]) -> list[str]:
        """Return ``addresses`` in the order to try them; raise :class:`NoAddress` if none may be.

        Without a preference the resolver's order is kept. With one, the preferred family comes
        first (each family in the resolver's order); without fallback it is the only one.
        """
        if self.ip_protocol is None:
            return addresses
        wanted = VERSIONS[self.ip_protocol]
        preferred = [a for a in addresses if ip_version(a) == wanted]
        if not self.ip_protocol_fallback:
            if not preferred:
                raise NoAddress(
                    f"no IPv{wanted} address for host {host} (IP_PROTOCOL_FALLBACK=false)"
                )
            return preferred
        return preferred + [a for a in addresses if ip_version(a) != wanted]

    def too_large(self) -> ResponseTooLarge:
        """Return the error of a body past the limit."""
        assert self.max_body_bytes is not None
        return ResponseTooLarge(
            f"response body from target {self.target!r} exceeded MAX_BODY_BYTES"
            f" ({format_size(self.max_body_bytes)})"
        )


def shut_down(network_stream: Any) -> None:
    """End the TCP connection under an httpcore network stream at once, in both directions.

    httpcore would otherwise keep an HTTP/2 connection whose stream was closed early, while the
    server goes on sending. Reads on the connection then see its end, and the pool drops it.
    """
    get_extra_info = getattr(network_stream, "get_extra_info", None)
    sock = get_extra_info("socket") if get_extra_info is not None else None
    # On asyncio the socket is an asyncio.trsock.TransportSocket, which has shutdown().
    shutdown = getattr(sock, "shutdown", None)
    if shutdown is not None:
        with contextlib.suppress(OSError):
            shutdown(socket.SHUT_RDWR)
