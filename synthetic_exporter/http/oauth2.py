"""OAuth2 client credentials (RFC 6749 §4.4): a target's access token, fetched, cached, renewed.

:class:`OAuth2` is the ``httpx.Auth`` flow of a target's client. It sends each request with
``Authorization: Bearer <token>``; the token comes from a ``POST`` to the token URL
(``grant_type=client_credentials``, the client id and secret as HTTP Basic credentials, as the
RFC prefers) and is kept for the agent's lifetime, shared by every suite and run, until shortly
before it expires (:func:`refresh_margin`). One task fetches while the others wait for it.
A token that came without ``expires_in`` is kept until the target answers 401. After a 401 with
a kept token (it may have been revoked), the token is dropped, fetched again and the request
sent once more (if its body can be sent again).

The token request goes through ``send``: the target's connections (its TLS settings and
proxy), instrumented under :func:`token_target`'s name, so it is recorded as a request of its
own in the running test.
Neither the client secret nor a token is ever part of an error; tokens issued lately are
listed in :attr:`OAuth2.recent` so that the engine masks them wherever they are echoed.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote_plus

import anyio
import httpx

from synthetic_exporter.core.settings import header_problem

Send = Callable[[httpx.Request], Awaitable[httpx.Response]]

MARGIN_SHARE = 0.1  # of a token's lifetime, renewed this early...
MIN_MARGIN_SECONDS = 10.0  # ...but at least this early...
MAX_MARGIN_SECONDS = 300.0  # ...at most this early, and never before half its lifetime
RECENT_TOKENS = 4  # tokens remembered (for masking) per target
MAX_DETAIL_CHARS = 120  # of the ``error`` and ``error_description`` fields quoted in errors


class TokenRequestError(httpx.RequestError):
    """The token URL gave no usable access token; the message names the URL and why.

    Its ``request`` is the token request; a certificate the target's TLS settings refuse is
    its cause (the engine then names the token URL's host in its certificate message).
    """


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a token request sends; the secret is never shown."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()

    def form(self) -> dict[str, str]:
        """Return the request's form fields."""
        form = {"grant_type": "client_credentials", **dict(self.params)}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        return form

    def authorization(self) -> str:
        """Return the ``Basic`` header value of the client (RFC 6749 §2.3.1: each part encoded)."""
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
        return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and when (``time.monotonic``) to fetch the next one."""

    value: str = field(repr=False)
    renew_at: float


def token_target(target: str) -> str:
    """Return the name a target's token requests are recorded under (``api`` -> ``api:oauth2``).

    Not a possible target name, so the token endpoint's figures (its latency, status codes and
    certificate expiry) never mix with the target's own.
    """
    return f"{target}:oauth2"


def refresh_margin(lifetime: float) -> float:
    """Return how long before its expiry a token of ``lifetime`` seconds is renewed."""
    share = min(max(lifetime * MARGIN_SHARE, MIN_MARGIN_SECONDS), MAX_MARGIN_SECONDS)
    return min(share, lifetime / 2)


def _lifetime(value: object) -> float | None:
    """Return ``expires_in`` in seconds (a number, or a string of one), or None."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _field(payload: Mapping[str, object], name: str) -> str:
    """Return a printable, shortened text field of the token endpoint's answer ('' if none)."""
    value = payload.get(name)
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value if c.isprintable())[:MAX_DETAIL_CHARS]


def parse_answer(status: int, reason: str, body: bytes) -> tuple[str, float | None]:
    """Return the access token and its lifetime in an answer; raise ``ValueError`` saying why not.

    A refusal's message is the status and the OAuth2 ``error`` (RFC 6749 §5.2) and its
    description, never the body itself.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {}
    if not 200 <= status < 300:
        error = _field(payload, "error") or reason
        description = _field(payload, "error_description")
        raise ValueError(f"{status} {error}".strip() + (f" ({description})" if description else ""))
    value = payload.get("access_token")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{status}, but the answer has no access_token (JSON)")
    if header_problem(value) is not None:
        raise ValueError(f"{status}, but the access token cannot be sent as a header value")
    kind = payload.get("token_type", "bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        shown = _field(payload, "token_type")
        raise ValueError(f"{status}, but token_type {shown!r} is not bearer")
    return value, _lifetime(payload.get("expires_in"))


class OAuth2(httpx.Auth):
    """A target's OAuth2 client credentials flow, its token shared by every request."""

    def __init__(
        self,
        credentials: ClientCredentials,
        send: Send,
        headers: Mapping[str, str],
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self.send = send
        self.headers = {**headers, "Accept": "application/json"}
        self.timeout = httpx.Timeout(timeout)
        self.clock = clock
        self.token: Token | None = None
        self.recent: deque[str] = deque(maxlen=RECENT_TOKENS)
        self.fetches = 0  # token requests sent
        self.failure: str | None = None  # the last attempt's error, for tasks that waited on it
        self._lock = anyio.Lock()

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse: target clients are asynchronous."""
        raise RuntimeError("OAuth2 targets are used with asynchronous clients only")
        yield request  # pragma: no cover - makes this a generator, as httpx expects

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send ``request`` with the token; after a 401 with a kept token, renew it once.

        A request that sets its own ``Authorization`` header is sent as it is.
        """
        if "authorization" in request.headers:
            yield request
            return
        token, fetched = await self.current()
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code != 401 or fetched:
            return
        await response.aread()  # done with (and recorded) before the token request starts
        if self.token is token:
            self.token = None  # rejected: revoked, or expired before its time
        if not isinstance(request.stream, httpx.ByteStream):
            return  # a streamed body cannot be sent again; the next request gets a new token
        token, _ = await self.current()
        request.headers["Authorization"] = f"Bearer {token.value}"
        yield request

    async def current(self) -> tuple[Token, bool]:
        """Return a valid token and whether it was fetched now (by this task)."""
        token = self.token
        if token is not None and self.clock() < token.renew_at:
            return token, False
        attempts = self.fetches
        async with self._lock:
            token = self.token
            if token is not None and self.clock() < token.renew_at:
                return token, False  # another task fetched it while this one waited
            if self.fetches != attempts and self.failure is not None:
                # The attempt this task waited for failed.
                raise TokenRequestError(self.failure, request=self._request())
            self.token = await self.fetch()
            return self.token, True

    async def fetch(self) -> Token:
        """Ask the token URL for a new token (a recorded request); raise if none comes."""
        url = self.credentials.token_url
        request = self._request()
        self.fetches += 1
        self.failure = None
        started = self.clock()
        try:
            value, lifetime = await self._ask(request)
        except (httpx.HTTPError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, httpx.HTTPError) else exc
            self.failure = f"OAuth2 token request to {url} failed: {detail}"
            raise TokenRequestError(self.failure, request=request) from exc
        self.recent.append(value)
        if lifetime is None:
            return Token(value, math.inf)
        return Token(value, started + lifetime - refresh_margin(lifetime))

    def _request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.credentials.token_url,
            headers={**self.headers, "Authorization": self.credentials.authorization()},
            data=self.credentials.form(),
            extensions={"timeout": self.timeout.as_dict()},
        )

    async def _ask(self, request: httpx.Request) -> tuple[str, float | None]:
        response = await self.send(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        return parse_answer(response.status_code, response.reason_phrase, body)
