"""HTTP clients of the configured targets, instrumented, made once and reused.

A client per check would add tens of milliseconds of TLS set-up to every run; sharing one per
target keeps clocks honest (they start after client set-up) and connections pooled. A target
with ``fresh_connections`` keeps its connections for one suite run only: each run then pays,
and measures, its own DNS, TCP and TLS. Its client is shared too; its transport keeps a pool
per run (:func:`~synthetic_exporter.http.transport.run_connections`). An HTTP/2 target runs on
httpx's own transport, which cannot do that, so a fresh one gets a new client per run.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.core.version import __version__
from synthetic_exporter.http.instrumentation import InstrumentedTransport
from synthetic_exporter.http.transport import Http11Transport, run_connections

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


# An absolute path (and query) made only of characters httpx's URL parser keeps as they are
# (its PATH_SAFE and QUERY_SAFE sets, printable ASCII): such a URL parses to itself.
PLAIN_PATH_AND_QUERY = re.compile(r"/(?!/)[!$-;=@-_a-z|~]*(?:\?[!$-;=?-~]*)?")
PLAIN_URL_MAX_LENGTH = 4096


def plain_merge(base: httpx.URL, url: str) -> httpx.URL | None:
    """Return ``base`` merged with ``url`` as httpx merges them, without parsing, or ``None``.

    Only for the common case: ``url`` is a plain absolute path (and query) with no dot
    segments, and ``base`` has no query or fragment. httpx would parse ``url``, then parse the
    merged URL again (about 40 µs, inside the check's clock); here the parsed form is built
    from ``base``'s (``httpx.URL`` keeps it in ``_uri_reference``; httpx is pinned below 0.29
    and tests/http/test_clients.py compares the two ways on thousands of URLs).
    """
    parsed = base._uri_reference
    if parsed.query is not None or parsed.fragment is not None or not parsed.host:
        return None
    if len(url) > PLAIN_URL_MAX_LENGTH or not PLAIN_PATH_AND_QUERY.fullmatch(url):
        return None
    path, separator, query = url.partition("?")
    if "." in path and any(segment in (".", "..") for segment in path.split("/")):
        return None
    merged = httpx.URL.__new__(httpx.URL)
    merged._uri_reference = parsed._replace(
        path=(parsed.path or "/") + path[1:], query=query if separator else None
    )
    return merged


class TargetClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` that does less work per request inside the check's clock.

    Two differences, both invisible to check code: the cheaper cookie jar above, and merging
    plain paths with the base URL without parsing them (:func:`plain_merge`); any other URL is
    merged by httpx itself.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._cookies = _Cookies(self._cookies)

    def _merge_url(self, url: httpx.URL | str) -> httpx.URL:
        if isinstance(url, str):
            merged = plain_merge(self._base_url, url)
            if merged is not None:
                return merged
        return super()._merge_url(url)

    @property
    def cookies(self) -> httpx.Cookies:
        """The client's cookies (the same jar httpx keeps, of the cheaper kind)."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = _Cookies(cookies)


def tls_context(target: TargetSettings) -> ssl.SSLContext:
    """Return a new TLS context for a target's clients."""
    if not target.verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    cafile = str(target.ca_bundle) if target.ca_bundle is not None else None
    return ssl.create_default_context(cafile=cafile)


def needs_tls_up_front(target: TargetSettings) -> bool:
    """Tell whether a target's TLS context is made at start-up rather than at first use.

    Targets on https (or HTTP/2, or with their own CA or verification settings) get it at
    start-up, so that a bad CA bundle stops the agent at once. A plain http target makes it
    only if a check calls an https URL: a context with the system's CAs costs about 1.5 MiB,
    and that first https request pays the few milliseconds of making it.
    """
    return (
        target.base_url.lower().startswith("https:")
        or target.http2
        or target.ca_bundle is not None
        or not target.verify
    )


def build_client(
    name: str,
    target: TargetSettings,
    environment: str,
    context: Callable[[], ssl.SSLContext],
    redact: Callable[[str], str] = lambda s: s,
    secrets: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """Return an instrumented client for one target, sending the synthetic-test marker.

    ``context`` returns the target's TLS context (HTTP/2 asks for it now, HTTP/1.1 when it
    first opens an https connection).
    """
    headers = {"User-Agent": USER_AGENT, MARKER_HEADER: environment, **target.headers}
    if target.bearer_secret is not None:
        headers["Authorization"] = f"Bearer {(secrets or {})[target.bearer_secret]}"
    inner: httpx.AsyncBaseTransport
    if target.http2:
        inner = httpx.AsyncHTTPTransport(verify=context(), http2=True)
    else:
        inner = Http11Transport(make_ssl_context=context, per_run=target.fresh_connections)
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
            if needs_tls_up_front(target):
                self.context(name)
            self.shared[name] = self._client(name, secrets)

    def context(self, name: str) -> ssl.SSLContext:
        """Return target ``name``'s TLS context, made once (see :func:`needs_tls_up_front`)."""
        context = self.contexts.get(name)
        if context is None:
            context = self.contexts[name] = tls_context(self.settings.targets[name])
        return context

    def _client(self, name: str, secrets: dict[str, str] | None = None) -> httpx.AsyncClient:
        if secrets is None:
            secrets = {k: v.get_secret_value() for k, v in self.settings.secrets.items()}
        target = self.settings.targets[name]
        return build_client(
            name,
            target,
            self.settings.environment,
            lambda: self.context(name),
            self.redact,
            secrets,
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
