"""Target authentication against real servers: OAuth2 client credentials and basic auth.

A starlette token endpoint under uvicorn issues short-lived tokens and counts its requests; the
protected API checks them, over HTTP/1.1 (same uvicorn) and HTTP/2 (an h2 server with TLS).
The agent's engine runs real suites several times, as the agent does between intervals.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import anyio
import httpx
import pytest
import trustme

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import Outcome, RequestRecord, TestResult
from synthetic_exporter.core.settings import Settings, TargetSettings
from synthetic_exporter.engine.coordinator import Coordinator
from synthetic_exporter.engine.wiring import open_engine
from synthetic_exporter.http.oauth2 import parse_answer, refresh_margin
from tests.conftest import start_agent, stop_process, write_checks
from tests.engine_helpers import Recorder
from tests.http.h2_server import serve_h2
from tests.http.oauth2_server import (
    BASIC_PASSWORD,
    BASIC_USER,
    CLIENT_ID,
    CLIENT_SECRET,
    AuthServer,
    api_answer,
    free_port,
    serve_http11,
)
from tests.http.test_proxy import start_tinyproxy

SettingsFor = Callable[..., Settings]
Run = Callable[[], Awaitable[list[TestResult]]]
SECRETS = {"client_secret": CLIENT_SECRET, "login": f"{BASIC_USER}:{BASIC_PASSWORD}"}


@pytest.fixture
def auth() -> Iterator[AuthServer]:
    """A fresh token endpoint and HTTP/1.1 API (tokens valid 30 s)."""
    with serve_http11(AuthServer()) as server:
        yield server


@pytest.fixture
def h2_api(auth: AuthServer, ca: trustme.CA) -> Iterator[str]:
    """An HTTP/2 API (https://localhost, trusted by ``ca``) accepting ``auth``'s tokens."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    with serve_h2(api_answer(auth), context) as url:
        yield url


def calling(name: str = "api", path: str = "/api", count: int = 1, version: str = "") -> Suite:
    """Return a suite whose one test GETs ``path`` ``count`` times and wants 200 each time."""
    suite = Suite(name)

    @suite.test
    async def call(t: T) -> None:
        for _ in range(count):
            r = await t.http.get(path)
            assert r.status_code == 200, f"{path} answered {r.status_code}"
            assert not version or r.http_version == version

    return suite


def oauth2_settings(
    settings_for: SettingsFor, base_url: str, token_url: str, **options: object
) -> Settings:
    secrets = options.pop("secrets", None) or SECRETS
    target = TargetSettings(
        base_url=base_url,
        oauth2_token_url=token_url,
        oauth2_client_id=CLIENT_ID,
        oauth2_secret="client_secret",
        **options,
    )
    return settings_for(targets={"default": target}, secrets=secrets, concurrency=10)


def with_ca(tmp_path: Path, ca: trustme.CA) -> Path:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return bundle


@asynccontextmanager
async def agent(settings: Settings, *suites: Suite) -> AsyncIterator[Run]:
    """Open one engine (as the agent keeps one); yield a function running every suite once."""
    by_name = {s.name: s for s in suites}
    recorder = Recorder()
    async with open_engine(settings, by_name) as engine:
        coordinator = Coordinator(
            engine=engine, suites=by_name, listener=recorder, concurrency=settings.concurrency
        )

        async def run() -> list[TestResult]:
            before = len(recorder.tests)
            await coordinator.run_batch(list(by_name))
            return recorder.tests[before:]

        yield run


def token_requests(results: list[TestResult]) -> list[RequestRecord]:
    return [r for result in results for r in result.requests if r.path == "/token"]


def passed(results: list[TestResult]) -> None:
    for result in results:
        assert result.outcome is Outcome.PASSED, result.message


@pytest.mark.slow
async def test_one_token_serves_many_runs_and_its_request_is_recorded_apart(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    settings = oauth2_settings(
        settings_for,
        auth.url,
        f"{auth.url}/token",
        oauth2_scopes=["read:invoices", "write"],
        oauth2_params={"audience": "https://api.example"},
    )
    async with agent(settings, calling(count=2)) as run:
        first = await run()
        later = [result for _ in range(4) for result in await run()]
    passed(first + later)
    assert auth.fetches == 1
    assert auth.forms == [
        {
            "grant_type": "client_credentials",
            "scope": "read:invoices write",
            "audience": "https://api.example",
        }
    ]
    (result,) = first
    token, *calls = result.requests
    assert (token.method, token.path, token.status, token.target) == (
        "POST",
        "/token",
        200,
        "default:oauth2",
    )
    assert {"connect", "processing", "transfer"} <= set(token.phases)
    assert [(c.method, c.path, c.status) for c in calls] == [("GET", "/api", 200)] * 2
    # Its own request: the first API call's clock starts after the token request's ended.
    assert calls[0].started_at >= token.started_at + token.duration_seconds - 0.001
    assert not token_requests(later)
    assert auth.api_calls == 10


@pytest.mark.slow
async def test_a_token_is_fetched_again_shortly_before_it_expires(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    auth.expires_in = 2.0  # renewed after 1 s (the margin is at most half the lifetime)
    settings = oauth2_settings(settings_for, auth.url, f"{auth.url}/token")
    async with agent(settings, calling()) as run:
        passed(await run() + await run())
        assert auth.fetches == 1
        await anyio.sleep(1.1)
        renewed = await run()
    passed(renewed)
    assert auth.fetches == 2
    assert [r.path for r in renewed[0].requests] == ["/token", "/api"]


@pytest.mark.slow
async def test_suites_needing_a_token_at_once_share_one_fetch(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    auth.delay = 0.3  # every suite asks while the first request is still out
    settings = oauth2_settings(settings_for, auth.url, f"{auth.url}/token")
    suites = [calling(f"api{i}") for i in range(6)]
    async with agent(settings, *suites) as run:
        results = await run()
    passed(results)
    assert len(results) == 6
    assert auth.fetches == 1
    assert len(token_requests(results)) == 1  # in the result of the test that fetched it


@pytest.mark.slow
async def test_suites_waiting_on_a_failed_token_request_share_its_error(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    auth.delay = 0.3
    settings = oauth2_settings(
        settings_for, auth.url, f"{auth.url}/token", secrets={"client_secret": "wr0ng-s3cret"}
    )
    async with agent(settings, *[calling(f"api{i}") for i in range(6)]) as run:
        results = await run()
        assert auth.token_calls == 1  # not one attempt after the other for each waiting test
        assert {r.message for r in results} == {
            f"TokenRequestError: OAuth2 token request to {auth.url}/token failed: 401"
            " invalid_client"
        }
        await run()
    assert auth.token_calls == 2  # a later run tries again


@pytest.mark.slow
async def test_a_refused_client_fails_the_test_with_the_endpoint_s_error(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    wrong = "wr0ng-cl1ent-secret"
    settings = oauth2_settings(
        settings_for, auth.url, f"{auth.url}/token", secrets={"client_secret": wrong}
    )
    async with agent(settings, calling()) as run:
        (result,) = await run()
    assert result.outcome is Outcome.ERROR  # an exception, as when the target itself is down
    assert result.message == (
        f"TokenRequestError: OAuth2 token request to {auth.url}/token failed: 401 invalid_client"
    )
    assert wrong not in result.message + result.traceback
    ((token),) = result.requests
    assert (token.path, token.status) == ("/token", 401)
    assert auth.api_calls == 0


@pytest.mark.slow
async def test_a_token_url_that_is_down_fails_the_test_clearly(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    down = f"http://127.0.0.1:{free_port()}/oauth/token"
    settings = oauth2_settings(settings_for, auth.url, down)
    async with agent(settings, calling()) as run:
        (result,) = await run()
    assert result.outcome is Outcome.ERROR
    assert result.message.startswith(
        f"TokenRequestError: OAuth2 token request to {down} failed: ConnectError: "
    ), result.message
    ((token),) = result.requests
    assert token.path == "/oauth/token"
    assert token.status is None
    assert token.error.startswith("ConnectError")
    assert auth.api_calls == 0


@pytest.mark.slow
async def test_a_revoked_token_is_fetched_again_once_after_a_401(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    settings = oauth2_settings(settings_for, auth.url, f"{auth.url}/token")
    async with agent(settings, calling()) as run:
        passed(await run())
        auth.revoke_all()
        (result,) = await run()
        passed([result])
        passed(await run())
    assert auth.fetches == 2
    assert [(r.method, r.path, r.status) for r in result.requests] == [
        ("GET", "/api", 401),
        ("POST", "/token", 200),
        ("GET", "/api", 200),
    ]


@pytest.mark.slow
async def test_a_streamed_body_is_not_sent_twice_and_the_next_request_renews(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    suite = Suite("upload")

    @suite.test
    async def upload(t: T) -> None:
        async def body() -> AsyncIterator[bytes]:
            yield b"part"

        assert (await t.http.get("/api")).status_code == 200
        auth.revoke_all()
        r = await t.http.post("/api", content=body())
        assert r.status_code == 401  # the revoked token's answer, as it came
        r = await t.http.post("/api", content=b"bytes can be sent again")
        assert r.status_code == 200

    settings = oauth2_settings(settings_for, auth.url, f"{auth.url}/token")
    async with agent(settings, suite) as run:
        (result,) = await run()
    passed([result])
    assert [(r.method, r.path, r.status) for r in result.requests] == [
        ("POST", "/token", 200),
        ("GET", "/api", 200),
        ("POST", "/api", 401),
        ("POST", "/token", 200),
        ("POST", "/api", 200),
    ]
    assert auth.fetches == 2


@pytest.mark.slow
async def test_a_token_without_expires_in_is_kept_until_the_target_refuses_it(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    auth.expires_in = None
    settings = oauth2_settings(settings_for, auth.url, f"{auth.url}/token")
    async with agent(settings, calling()) as run:
        for _ in range(3):
            passed(await run())
        assert auth.fetches == 1
        auth.revoke_all()
        passed(await run())
    assert auth.fetches == 2


@pytest.mark.slow
async def test_a_request_with_its_own_authorization_is_sent_as_it_is(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    suite = Suite("own")

    @suite.test
    async def unauthorised(t: T) -> None:
        r = await t.http.get("/api", headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
        r = await t.http.get("/api", auth=None)
        assert r.status_code == 401
        assert "authorization" not in r.request.headers

    settings = oauth2_settings(settings_for, auth.url, f"{auth.url}/token")
    async with agent(settings, suite) as run:
        passed(await run())
    assert auth.fetches == 0


@pytest.mark.slow
async def test_a_message_echoing_the_token_is_masked(
    auth: AuthServer, settings_for: SettingsFor
) -> None:
    suite = Suite("echo")

    @suite.test
    async def leaky(t: T) -> None:
        r = await t.http.get("/api")
        header = r.request.headers["authorization"]
        t.log(f"sent {header}")
        raise AssertionError(f"sent {header}")

    settings = oauth2_settings(settings_for, auth.url, f"{auth.url}/token")
    async with agent(settings, suite) as run:
        (result,) = await run()
    (token,) = auth.tokens
    assert result.outcome is Outcome.FAILED
    assert result.message == "sent Bearer ***"
    assert [line.message for line in result.logs] == ["sent Bearer ***"]
    assert token not in result.traceback


@pytest.mark.slow
async def test_http2_target_gets_its_token_once_and_records_its_request(
    auth: AuthServer, h2_api: str, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = oauth2_settings(
        settings_for, h2_api, f"{auth.url}/token", http2=True, ca_bundle=with_ca(tmp_path, ca)
    )
    async with agent(settings, calling(count=2, version="HTTP/2")) as run:
        first = await run()
        later = [result for _ in range(3) for result in await run()]
    passed(first + later)
    assert auth.fetches == 1
    token, *calls = first[0].requests
    assert (token.method, token.path, token.status) == ("POST", "/token", 200)
    assert (token.target, calls[0].target) == ("default:oauth2", "default")
    assert {"connect", "processing", "transfer"} <= set(token.phases)
    assert [(c.path, c.status) for c in calls] == [("/api", 200)] * 2
    assert calls[0].tls_version.startswith("TLSv1.")
    assert not token_requests(later)


@pytest.mark.slow
async def test_http2_target_fetches_again_after_a_401(
    auth: AuthServer, h2_api: str, ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path
) -> None:
    settings = oauth2_settings(
        settings_for, h2_api, f"{auth.url}/token", http2=True, ca_bundle=with_ca(tmp_path, ca)
    )
    async with agent(settings, calling(version="HTTP/2")) as run:
        passed(await run())
        auth.revoke_all()
        (result,) = await run()
    passed([result])
    assert [(r.path, r.status) for r in result.requests] == [
        ("/api", 401),
        ("/token", 200),
        ("/api", 200),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_basic_auth_sends_the_secret_s_credentials(
    auth: AuthServer,
    h2_api: str,
    ca: trustme.CA,
    settings_for: SettingsFor,
    tmp_path: Path,
    http2: bool,
) -> None:
    base_url = h2_api if http2 else auth.url
    version = "HTTP/2" if http2 else "HTTP/1.1"

    def settings(credentials: str) -> Settings:
        target = TargetSettings(
            base_url=base_url,
            basic_auth_secret="login",
            http2=http2,
            ca_bundle=with_ca(tmp_path, ca),
        )
        return settings_for(targets={"default": target}, secrets={"login": credentials})

    async with agent(
        settings(f"{BASIC_USER}:{BASIC_PASSWORD}"), calling(path="/basic", version=version)
    ) as run:
        passed(await run())
    async with agent(settings(f"{BASIC_USER}:not-the-password"), calling(path="/basic")) as run:
        (refused,) = await run()
    assert refused.outcome is Outcome.FAILED
    assert refused.message.startswith("/basic answered 401")
    assert [(r.path, r.status) for r in refused.requests] == [("/basic", 401)]


@pytest.mark.slow
async def test_the_token_request_uses_the_target_s_tls_settings(
    ca: trustme.CA, settings_for: SettingsFor, tmp_path: Path
) -> None:
    pem = tmp_path / "localhost.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    with serve_http11(AuthServer(), pem) as auth:
        secure = f"https://localhost:{auth.port}"
        trusting = oauth2_settings(
            settings_for, secure, f"{secure}/token", ca_bundle=with_ca(tmp_path, ca)
        )
        async with agent(trusting, calling()) as run:
            (result,) = await run()
        passed([result])
        token, call = result.requests
        assert token.path == "/token"
        assert token.phases["tls"] > 0
        assert token.tls_version.startswith("TLSv1.")
        assert token.cert_not_after is not None
        assert "tls" not in call.phases  # the API call reuses the token request's connection
        async with agent(
            oauth2_settings(settings_for, secure, f"{secure}/token"), calling()
        ) as run:
            (distrusting,) = await run()
    assert distrusting.outcome is Outcome.ERROR
    assert distrusting.message.startswith(f"TLS certificate of localhost:{auth.port} not accepted")
    assert auth.fetches == 1


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tinyproxy") is None, reason="needs tinyproxy")
async def test_the_token_request_goes_through_the_target_s_proxy(
    auth: AuthServer, settings_for: SettingsFor, tmp_path: Path
) -> None:
    proxy = start_tinyproxy(tmp_path / "proxy")
    try:
        plain = f"http://localhost:{auth.port}"
        settings = oauth2_settings(settings_for, plain, f"{plain}/token", proxy_url=proxy.url)
        async with agent(settings, calling()) as run:
            (result,) = await run()
    finally:
        stop_process(proxy.process)
    passed([result])
    token, _ = result.requests
    assert token.path == "/token"
    assert token.phases["proxy"] > 0
    assert "connect" not in token.phases  # no TCP connection of its own to the token server
    assert f"CONNECT localhost:{auth.port} HTTP/1.1" in proxy.log_text()


ECHO_CHECK = """
    from synthetic_exporter import Suite, T

    echo = Suite("echo")

    @echo.test
    async def leaky(t: T) -> None:
        r = await t.http.get("/api")
        assert r.status_code == 200
        t.log(f"sent {r.request.headers['authorization']}")
        assert False, f"sent {r.request.headers['authorization']}"

    other = Suite("other")

    @other.test
    async def refused(t: T) -> None:
        await t.client("refused").get("/api")
"""


@pytest.mark.slow
def test_an_agent_shows_the_token_request_and_never_a_token_or_secret(
    auth: AuthServer, tmp_path: Path
) -> None:
    """A real agent: the run page and API show the token request; no token or secret anywhere."""
    checks = write_checks(tmp_path / "checks", {"echo.py": ECHO_CHECK})
    agent = start_agent(
        checks,
        tmp_path / "state",
        auth.url,
        SYNTHETIC_INTERVAL="1s",
        SYNTHETIC_LOG_LEVEL="DEBUG",
        SYNTHETIC_SECRETS__CLIENT_SECRET=CLIENT_SECRET,
        SYNTHETIC_SECRETS__WRONG_SECRET=f"{CLIENT_SECRET}-wrong",
        SYNTHETIC_TARGETS__DEFAULT__OAUTH2_TOKEN_URL=f"{auth.url}/token",
        SYNTHETIC_TARGETS__DEFAULT__OAUTH2_CLIENT_ID=CLIENT_ID,
        SYNTHETIC_TARGETS__DEFAULT__OAUTH2_SECRET="client_secret",
        SYNTHETIC_TARGETS__REFUSED__BASE_URL=auth.url,
        SYNTHETIC_TARGETS__REFUSED__OAUTH2_TOKEN_URL=f"{auth.url}/token",
        SYNTHETIC_TARGETS__REFUSED__OAUTH2_CLIENT_ID=CLIENT_ID,
        SYNTHETIC_TARGETS__REFUSED__OAUTH2_SECRET="wrong_secret",
    )
    try:

        def runs_of(suite: str) -> list[dict[str, Any]]:
            url = f"{agent.url}/api/v1/runs?suite={suite}"
            found: list[dict[str, Any]] = httpx.get(url, timeout=5).json()["runs"]
            return found

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and min(len(runs_of("echo")), len(runs_of("other"))) < 3:
            time.sleep(0.3)
        first, refused = runs_of("echo")[-1]["run_id"], runs_of("other")[-1]["run_id"]
        run = httpx.get(f"{agent.url}/api/v1/runs/{first}", timeout=5).text
        other = httpx.get(f"{agent.url}/api/v1/runs/{refused}", timeout=5).json()
        page = httpx.get(f"{agent.url}/runs/{first}", timeout=5).text
        metrics = httpx.get(f"{agent.url}/metrics", timeout=5).text
        health = httpx.get(f"{agent.url}/healthz", timeout=5).text
    finally:
        stop_process(agent.process)
    output = "".join(agent.lines_so_far())
    assert auth.fetches == 1  # three runs or more, one token
    tests = {t["name"]: t for t in json.loads(run)["tests"]}
    (refusal,) = other["tests"]
    token, call = tests["leaky"]["requests"]
    assert (token["target"], token["method"], token["path"]) == ("default:oauth2", "POST", "/token")
    assert token["phases"]
    assert (call["target"], call["path"]) == ("default", "/api")
    assert tests["leaky"]["message"].startswith("sent Bearer ***\n")
    assert refusal["message"] == (
        f"TokenRequestError: OAuth2 token request to {auth.url}/token failed: 401 invalid_client"
    )
    assert "/token" in page
    assert 'target="default:oauth2"' in metrics
    stored = "".join(
        p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()
    )
    basic = base64.b64encode(f"{quote_plus(CLIENT_ID)}:{quote_plus(CLIENT_SECRET)}".encode())
    for secret in (CLIENT_SECRET, basic.decode(), *auth.tokens):
        for name, text in {
            "logs": output,
            "metrics": metrics,
            "run": run,
            "page": page,
            "health": health,
            "state": stored,
        }.items():
            assert secret not in text, name


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [(2.0, 1.0), (30.0, 10.0), (600.0, 60.0), (3600.0, 300.0), (86400.0, 300.0)],
)
def test_tokens_are_renewed_a_tenth_of_their_life_early_within_bounds(
    lifetime: float, margin: float
) -> None:
    assert refresh_margin(lifetime) == pytest.approx(margin)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"access_token": "abcd", "expires_in": "120"}', ("abcd", 120.0)),
        (200, b'{"access_token": "abcd", "token_type": "bearer", "expires_in": 0}', ("abcd", None)),
        (
            400,
            b'{"error": "invalid_scope", "error_description": "no\\nwrite"}',
            "400 invalid_scope (nowrite)",
        ),
        (503, b"<html>down</html>", "503 Service Unavailable"),
        (200, b'{"token": "abcd"}', "200, but the answer has no access_token (JSON)"),
        (200, b'{"access_token": "ab\\ncd"}', "200, but the access token cannot be sent"),
        (
            200,
            b'{"access_token": "abcd", "token_type": "mac"}',
            "200, but token_type 'mac' is not bearer",
        ),
    ],
)
def test_token_answers_are_read_or_refused_with_a_reason(
    status: int, body: bytes, expected: tuple[str, float | None] | str
) -> None:
    reason = "Service Unavailable" if status == 503 else ""
    if isinstance(expected, tuple):
        assert parse_answer(status, reason, body) == expected
        return
    with pytest.raises(ValueError, match="^" + expected.replace("(", r"\(").replace(")", r"\)")):
        parse_answer(status, reason, body)
