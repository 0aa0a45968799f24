"""HTTP clients of the configured targets, instrumented, made once and reused.

A client per check would add tens of milliseconds of TLS set-up to every run; sharing one per
target keeps clocks honest (they start after client set-up) and connections pooled. A target
with ``fresh_connections`` keeps its connections for one suite run only: each run then pays,
and measures, its own DNS, TCP and TLS. Its client is shared too; its transport keeps a pool
per run (:func:`~synthetic_exporter.http.transport.run_connections`). An HTTP/2 target runs on
httpcore's pool (:mod:`synthetic_exporter.http.http2_backend`), which cannot do that, so a
fresh one gets a new client per run.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from synthetic_exporter.core.logs import redact
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.core.version import __version__
from synthetic_exporter.http._httpx_adapter import merge_plain_path
from synthetic_exporter.http.instrumentation import InstrumentedTransport
from synthetic_exporter.http.network import NetworkOptions
from synthetic_exporter.http.oauth2 import ClientCredentials, OAuth2, token_target
from synthetic_exporter.http.proxy import Proxy, basic_authorization
from synthetic_exporter.http.tls import server_names, tls_context
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


class TargetClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` that does less work per request inside the check's clock.

    Two differences, both invisible to check code and both through httpx's public API: the
    cheaper cookie jar above (behind the public ``cookies`` property, which httpx's own code
    reads), and plain paths merged with the base URL without parsing them
    (:func:`~synthetic_exporter.http._httpx_adapter.merge_plain_path`, in
    :meth:`build_request`, which every ``get``, ``post``, ``request`` and ``stream`` goes
    through); any other URL is merged by httpx itself.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._check_cookies = _Cookies(options.get("cookies"))

    def build_request(self, method: str, url: httpx.URL | str, **options: Any) -> httpx.Request:
        """Build a request as httpx does; a plain path's URL is merged without parsing."""
        if isinstance(url, str):
            merged = merge_plain_path(self.base_url, url)
            if merged is not None:
                url = merged
        return super().build_request(method, url, **options)

    @property
    def cookies(self) -> httpx.Cookies:
        """The client's cookies (a jar of the cheaper kind)."""
        return self._check_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._check_cookies = _Cookies(cookies)


def needs_tls_up_front(target: TargetSettings) -> bool:
    """Tell whether a target's TLS context is made at start-up rather than at first use.

    Targets on https (or HTTP/2, or with their own CA, verification or other TLS settings) get
    it at start-up, so that a bad CA bundle or client certificate stops the agent at once. A
    plain http target makes it only if a check calls an https URL: a context with the system's
    CAs costs about 1.5 MiB and 25 ms, made before that first https request's clock starts.
    """
    return (
        target.base_url.lower().startswith("https:")
        or target.http2
        or target.ca_bundle is not None
        or not target.verify
        or target.client_cert is not None
        or target.min_tls_version is not None
        or target.max_tls_version is not None
    )


def _encoded_credentials(target: TargetSettings, secrets: dict[str, str]) -> list[str]:
    """Return the base64 forms of a target's Basic credentials, masked like the secrets."""
    found = [
        basic_authorization(secrets[name]).removeprefix("Basic ")
        for name in (target.basic_auth_secret, target.proxy_auth_secret)
        if name is not None
    ]
    credentials = client_credentials(target, secrets)
    if credentials is not None:
        found.append(credentials.authorization().removeprefix("Basic "))
    return found


def target_proxy(target: TargetSettings, secrets: dict[str, str]) -> Proxy | None:
    """Return the target's proxy (with the credentials its secret holds), if it has one."""
    if target.proxy_url is None:
        return None
    credentials = secrets[target.proxy_auth_secret] if target.proxy_auth_secret else None
    return Proxy.from_url(target.proxy_url, credentials)


def default_headers(
    target: TargetSettings, environment: str, secrets: dict[str, str]
) -> dict[str, str]:
    """Return the headers every request of a target sends (a bearer or basic secret included)."""
    headers = {"User-Agent": USER_AGENT, MARKER_HEADER: environment, **target.headers}
    if target.bearer_secret is not None:
        headers["Authorization"] = f"Bearer {secrets[target.bearer_secret]}"
    elif target.basic_auth_secret is not None:
        headers["Authorization"] = basic_authorization(secrets[target.basic_auth_secret])
    return headers


def client_credentials(target: TargetSettings, secrets: dict[str, str]) -> ClientCredentials | None:
    """Return a target's OAuth2 client credentials, if it has them."""
    if target.oauth2_token_url is None or target.oauth2_secret is None:
        return None
    assert target.oauth2_client_id is not None  # the settings require the three together
    return ClientCredentials(
        token_url=target.oauth2_token_url,
        client_id=target.oauth2_client_id,
        client_secret=secrets[target.oauth2_secret],
        scopes=tuple(target.oauth2_scopes),
        params=tuple(target.oauth2_params.items()),
    )


def network_options(name: str, target: TargetSettings) -> NetworkOptions:
    """Return a target's IP family preference and response size limit, for its transport."""
    return NetworkOptions(
        target=name,
        ip_protocol=target.ip_protocol,
        ip_protocol_fallback=target.ip_protocol_fallback,
        max_body_bytes=int(target.max_body_bytes),
    )


def build_client(
    name: str,
    target: TargetSettings,
    environment: str,
    context: Callable[[], ssl.SSLContext],
    redact: Callable[[str], str] = lambda s: s,
    secrets: dict[str, str] | None = None,
    auth: Callable[[InstrumentedTransport], httpx.Auth] | None = None,
) -> httpx.AsyncClient:
    """Return an instrumented client for one target, sending the synthetic-test marker.

    ``context`` returns the target's TLS context (HTTP/2 asks for it now, HTTP/1.1 when it
    first opens an https connection). ``auth``, given the transport for token requests (on the
    target's connections, recorded as :func:`~synthetic_exporter.http.oauth2.token_target`),
    returns the client's authentication flow (a target's OAuth2).
    """
    secrets = secrets or {}
    inner: httpx.AsyncBaseTransport
    if target.http2:
        # httpcore (with h2) loads only for HTTP/2 targets: about 5 MiB otherwise unused.
        from synthetic_exporter.http.http2_backend import Http2Transport

        inner = Http2Transport(
            context(),
            target_proxy(target, secrets),
            network_options(name, target),
            server_names(target),
        )
    else:
        inner = Http11Transport(
            make_ssl_context=context,
            per_run=target.fresh_connections,
            proxy=target_proxy(target, secrets),
            server_names=server_names(target),
            network=network_options(name, target),
        )
    transport = InstrumentedTransport(name, inner, redact)
    auth_flow = None
    if auth is not None:
        # Token requests share the connections, TLS and proxy, recorded under a name of their
        # own: the token endpoint's latency, status and certificate are not the target's.
        auth_flow = auth(InstrumentedTransport(token_target(name), inner, redact))
    return TargetClient(
        base_url=target.base_url,
        headers=default_headers(target, environment, secrets),
        timeout=target.timeout,
        transport=transport,
        auth=auth_flow,
        # No proxies from the environment: they would add their own latency to every figure
        # and route requests past the instrumented transport (a target's PROXY_URL is timed).
        trust_env=False,
    )


@dataclass(slots=True)
class Targets:
    """The clients of every target: shared ones, and fresh ones per suite run where asked.

    A target's OAuth2 token lives here too (:attr:`oauth2`), shared by all its clients, suites
    and runs; :meth:`mask` hides the tokens issued lately besides what ``redact`` hides.
    """

    settings: Settings
    redact: Callable[[str], str] = lambda s: s
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)
    shared: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    oauth2: dict[str, OAuth2] = field(default_factory=dict)
    derived: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        secrets = {k: v.get_secret_value() for k, v in self.settings.secrets.items()}
        for name, target in self.settings.targets.items():
            if needs_tls_up_front(target):
                self.context(name)
            self.shared[name] = self._client(name, secrets)
            self.derived += _encoded_credentials(target, secrets)

    def context(self, name: str) -> ssl.SSLContext:
        """Return target ``name``'s TLS context, made once (see :func:`needs_tls_up_front`)."""
        context = self.contexts.get(name)
        if context is None:
            target = self.settings.targets[name]
            secret = target.client_key_password_secret
            password = self.settings.secrets[secret].get_secret_value() if secret else None
            context = self.contexts[name] = tls_context(target, password)
        return context

    def mask(self, text: str) -> str:
        """Return ``text`` redacted, OAuth2 tokens and encoded credentials masked as well."""
        text = self.redact(text)
        live = [token for auth in self.oauth2.values() for token in auth.recent]
        return redact(text, [*live, *self.derived]) if live or self.derived else text

    def _client(self, name: str, secrets: dict[str, str] | None = None) -> httpx.AsyncClient:
        if secrets is None:
            secrets = {k: v.get_secret_value() for k, v in self.settings.secrets.items()}
        target = self.settings.targets[name]
        credentials = client_credentials(target, secrets)

        def auth(transport: InstrumentedTransport) -> httpx.Auth:
            # One flow per target: made with its first (shared) client, whose transport
            # sends the token requests of every client of the target.
            if name not in self.oauth2:
                assert credentials is not None
                headers = {"User-Agent": USER_AGENT, MARKER_HEADER: self.settings.environment}
                self.oauth2[name] = OAuth2(
                    credentials, transport.handle_async_request, headers, target.timeout
                )
            return self.oauth2[name]

        return build_client(
            name,
            target,
            self.settings.environment,
            lambda: self.context(name),
            self.mask,
            secrets,
            auth if credentials is not None else None,
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
