"""One ``httpx.AsyncClient`` per configured target, made once per process and reused.

A client per check would add tens of milliseconds of TLS set-up to every run; sharing one per
target keeps clocks honest (they start after client set-up) and connections pooled.
"""

from __future__ import annotations

import ssl

import httpx

from synthetic_exporter import __version__
from synthetic_exporter.settings import Settings, TargetSettings

MARKER_HEADER = "X-Synthetic-Test"
USER_AGENT = f"synthetic-exporter/{__version__}"


def _verify(target: TargetSettings) -> ssl.SSLContext | bool:
    if not target.verify:
        return False
    if target.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(target.ca_bundle))
    return True


def build_client(target: TargetSettings, environment: str) -> httpx.AsyncClient:
    """Return a client for one target, sending the synthetic-test marker on every request."""
    headers = {"User-Agent": USER_AGENT, MARKER_HEADER: environment, **target.headers}
    return httpx.AsyncClient(
        base_url=target.base_url,
        headers=headers,
        timeout=target.timeout,
        verify=_verify(target),
        http2=target.http2,
    )


def build_clients(settings: Settings) -> dict[str, httpx.AsyncClient]:
    """Return a client for every configured target, by name."""
    return {
        name: build_client(target, settings.environment)
        for name, target in settings.targets.items()
    }
