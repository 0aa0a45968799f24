"""A real OAuth2 token endpoint and protected APIs on 127.0.0.1, for the authentication tests.

:class:`AuthServer` is the state both servers share: the client credentials it accepts, the
tokens it issued (short-lived), the token requests it answered. The HTTP/1.1 server is a
starlette app under uvicorn (``POST /token``, ``GET /api`` needing a bearer token, ``GET
/basic`` needing basic credentials); the HTTP/2 one (:func:`api_answer`, served by
:func:`tests.http.h2_server.serve_h2`) answers ``/api`` and ``/basic`` the same way. Each runs
on its own event loop in a thread, so that the agent under test has its loop to itself.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.http.h2_server import Answer, Responder
from tests.uvicorn_thread import serve_in_thread

CLIENT_ID = "synthetic probe"  # a space: sent form-encoded inside the Basic credentials
CLIENT_SECRET = "cl1ent-s3cret/+="
BASIC_USER, BASIC_PASSWORD = "synth", "b4sic-pa55"


@dataclass
class AuthServer:
    """What the test servers accept and what they saw."""

    expires_in: float | None = 30.0
    delay: float = 0.0  # before answering a token request
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    forms: list[dict[str, str]] = field(default_factory=list)  # token requests' forms
    api_calls: int = 0
    token_calls: int = 0  # token requests, refused ones included
    port: int = 0

    @property
    def fetches(self) -> int:
        """Return how many token requests were answered with a token."""
        return len(self.tokens)

    @property
    def url(self) -> str:
        """The HTTP/1.1 server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def client_accepted(self, authorization: str) -> bool:
        """Tell whether ``authorization`` carries the client's id and secret (RFC 6749 §2.3.1)."""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        client, _, secret = base64.b64decode(encoded).decode("ascii").partition(":")
        return (unquote_plus(client), unquote_plus(secret)) == (CLIENT_ID, CLIENT_SECRET)

    def issue(self) -> str:
        """Return a new token, valid for ``expires_in`` seconds (an hour if unset)."""
        token = secrets.token_urlsafe(24)
        lifetime = self.expires_in if self.expires_in is not None else 3600.0
        self.tokens[token] = time.monotonic() + lifetime
        return token

    def revoke_all(self) -> None:
        """Make every issued token invalid."""
        for token in self.tokens:
            self.tokens[token] = 0.0

    def bearer_accepted(self, authorization: str) -> bool:
        """Tell whether ``authorization`` carries a token issued here and not expired."""
        scheme, _, token = authorization.partition(" ")
        expiry = self.tokens.get(token, 0.0)
        return scheme.lower() == "bearer" and time.monotonic() < expiry

    @staticmethod
    def basic_accepted(authorization: str) -> bool:
        """Tell whether ``authorization`` carries the basic user and password."""
        expected = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
        return authorization == f"Basic {expected}"

    def answer(self, path: str, authorization: str) -> int:
        """Return the status the protected ``path`` answers with."""
        if path == "/api":
            self.api_calls += 1
            return 200 if self.bearer_accepted(authorization) else 401
        if path == "/basic":
            return 200 if self.basic_accepted(authorization) else 401
        return 404


def token_app(state: AuthServer) -> Starlette:
    """Return the HTTP/1.1 app: the token endpoint and the protected APIs."""

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("ascii")))
        state.token_calls += 1
        if state.delay:
            await asyncio.sleep(state.delay)
        if not state.client_accepted(request.headers.get("authorization", "")):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        state.forms.append(form)
        body: dict[str, object] = {"access_token": state.issue(), "token_type": "Bearer"}
        if state.expires_in is not None:
            body["expires_in"] = state.expires_in
        return JSONResponse(body)

    async def protected(request: Request) -> Response:
        status = state.answer(request.url.path, request.headers.get("authorization", ""))
        return JSONResponse({"ok": status == 200}, status_code=status)

    return Starlette(
        routes=[
            Route("/token", token, methods=["POST"]),
            Route("/api", protected, methods=["GET", "POST"]),
            Route("/basic", protected),
        ]
    )


def free_port() -> int:
    """Return a port of 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_http11(state: AuthServer, pem: Path | None = None) -> Iterator[AuthServer]:
    """Serve :func:`token_app` under uvicorn on 127.0.0.1 in a thread; stop it afterwards.

    With ``pem`` (a key and certificate chain), it serves https (``state.url`` stays http).
    """
    options = {"ssl_certfile": pem, "ssl_keyfile": str(pem)} if pem is not None else {}
    with serve_in_thread(token_app(state), **options) as port:
        state.port = port
        yield state


def api_answer(state: AuthServer) -> Responder:
    """Return how the HTTP/2 API answers: ``/api`` and ``/basic``, judged by ``state``."""

    def respond(headers: dict[str, str]) -> Answer:
        status = state.answer(headers[":path"], headers.get("authorization", ""))
        return status, [], b'{"ok": %s}' % (b"true" if status == 200 else b"false")

    return respond
