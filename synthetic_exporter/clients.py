"""HTTP clients of the configured targets, instrumented, made once and reused.

A client per check would add tens of milliseconds of TLS set-up to every run; sharing one per
target keeps clocks honest (they start after client set-up) and connections pooled. A target
with ``fresh_connections`` keeps its connections for one suite run only: each run then pays,
and measures, its own DNS, TCP and TLS. Its client is shared too; its transport keeps a pool
per run (:func:`~synthetic_exporter.transport.run_connections`). An HTTP/2 target runs on
httpx's own transport, which cannot do that, so a fresh one gets a new client per run.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from synthetic_exporter import __version__
from synthetic_exporter.http import InstrumentedTransport
from synthetic_exporter.settings import Settings, TargetSettings
from synthetic_exporter.transport import Http11Transport, run_connections

MARKER_HEADER = "X-Synthetic-Test"
USER_AGENT = f"synthetic-exporter/{__version__}"


class _Cookies(httpx.Cookies):
    """A cookie jar that skips its work for responses setting no cookie.

    httpx hands every response to ``http.cookiejar`` through urllib request and response
    wrappers: about 50 µs per request, inside the check's clock, for nothing when no
    ``Set-Cookie`` came. Responses that set cookies are handled exactly as before.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        """Store the response's cookies, if it set any."""
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


# Distinct URL strings whose merge with the base URL a client remembers.
MERGED_URLS_KEPT = 1024


class TargetClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` that does less work per request inside the check's clock.

    Two differences, both invisible to check code: the cheaper cookie jar above, and merging a
    request's URL with the base URL once per distinct URL string (parsing and merging take
    about 60 µs a request; ``httpx.URL`` objects are immutable, so sharing one is safe). The
    memory is bounded (``MERGED_URLS_KEPT``) and forgotten when ``base_url`` changes.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._cookies = _Cookies(self._cookies)
        self._merged: dict[str, httpx.URL] = {}
        self._merged_base = self._base_url

    def _merge_url(self, url: httpx.URL | str) -> httpx.URL:
        if not isinstance(url, str):
            return super()._merge_url(url)
        if self._merged_base is not self._base_url:
            self._merged.clear()
            self._merged_base = self._base_url
        merged = self._merged.get(url)
        if merged is None:
            if len(self._merged) >= MERGED_URLS_KEPT:
                self._merged.clear()
            merged = self._merged[url] = super()._merge_url(url)
        return merged

    @property
    def cookies(self) -> httpx.Cookies:
        """The client's cookies (the same jar httpx keeps, of the cheaper kind)."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = _Cookies(cookies)


def tls_context(target: TargetSettings) -> ssl.SSLContext:
    """Return the TLS context a target's clients share."""
    if not target.verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    cafile = str(target.ca_bundle) if target.ca_bundle is not None else None
    return ssl.create_default_context(cafile=cafile)


def build_client(
    name: str,
    target: TargetSettings,
    environment: str,
    context: ssl.SSLContext,
    redact: Callable[[str], str] = lambda s: s,
    secrets: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """Return an instrumented client for one target, sending the synthetic-test marker."""
    headers = {"User-Agent": USER_AGENT, MARKER_HEADER: environment, **target.headers}
    if target.bearer_secret is not None:
        headers["Authorization"] = f"Bearer {(secrets or {})[target.bearer_secret]}"
    inner: httpx.AsyncBaseTransport
    if target.http2:
        inner = httpx.AsyncHTTPTransport(verify=context, http2=True)
    else:
        inner = Http11Transport(ssl_context=context, per_run=target.fresh_connections)
    return TargetClient(
        base_url=target.base_url,
        headers=headers,
        timeout=target.timeout,
        transport=InstrumentedTransport(name, inner, redact),
        # No proxies from the environment: they would add their own latency to every figure
        # and route requests past the instrumented transport.
        trust_env=False,
    )


@dataclass(slots=True)
class Targets:
    """The clients of every target: shared ones, and fresh ones per suite run where asked."""

    settings: Settings
    redact: Callable[[str], str] = lambda s: s
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)
    shared: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def __post_init__(self) -> None:
        secrets = {k: v.get_secret_value() for k, v in self.settings.secrets.items()}
        for name, target in self.settings.targets.items():
            self.contexts[name] = tls_context(target)
            self.shared[name] = self._client(name, secrets)

    def _client(self, name: str, secrets: dict[str, str] | None = None) -> httpx.AsyncClient:
        if secrets is None:
            secrets = {k: v.get_secret_value() for k, v in self.settings.secrets.items()}
        target = self.settings.targets[name]
        return build_client(
            name, target, self.settings.environment, self.contexts[name], self.redact, secrets
        )

    @asynccontextmanager
    async def for_run(self) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
        """Yield the clients one suite run uses; close its fresh ones afterwards."""
        fresh = {
            name: self._client(name)
            for name, target in self.settings.targets.items()
            if target.fresh_connections and target.http2
        }
        try:
            with run_connections():
                yield {**self.shared, **fresh}
        finally:
            with anyio.CancelScope(shield=True):
                for client in fresh.values():
                    await client.aclose()

    async def aclose(self) -> None:
        """Close every shared client."""
        with anyio.CancelScope(shield=True):
            for client in self.shared.values():
                await client.aclose()
