"""Header, time, connection and body limits, against a real uvicorn server on real sockets."""

from __future__ import annotations

import re
import resource
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import wait
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from synthetic_exporter.app.eventloop import backend_options
from synthetic_exporter.app.http_limits import BodyLimit, Limits, Turns
from synthetic_exporter.app.web import bind_socket, config_for, run_server
from tests.conftest import cli_env, fresh_python, start_process, stop_process, write_checks

pytestmark = pytest.mark.slow
SHORT = Limits(header_bytes=4096, read_timeout=1.0, keep_alive=1, write_stall=0.5, connections=8)


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"path": request.url.path, "body": len(body)})


async def big(request: Request) -> Response:
    return Response(b"x" * (16 * 1024 * 1024))


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", echo, methods=["GET", "POST"]),
            Route("/big", big),
        ]
    )


@contextmanager
def serving(app: Any, limits: Limits | None = SHORT) -> Iterator[int]:
    """Run ``app`` behind uvicorn on the agent's event loop, in a thread; yield the port."""
    sock = bind_socket("127.0.0.1", 0)
    port: int = sock.getsockname()[1]
    ready = threading.Event()
    with start_blocking_portal("asyncio", backend_options()) as portal:
        served = portal.start_task_soon(
            run_server, config_for(app, limits), sock, lambda _: ready.set()
        )
        assert ready.wait(10), "server did not start"
        try:
            yield port
        finally:
            served.cancel()
            wait([served], timeout=10)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def read_all(sock: socket.socket, timeout: float = 5) -> bytes:
    """Read until the server closes (EOF or reset); return what arrived."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Return how long the server took to close ``sock`` (fails after ``seconds``)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"still open after {seconds} s")
    return time.monotonic() - started


def test_headers_up_to_the_limit_pass_and_larger_ones_get_431() -> None:
    with serving(make_app()) as port:
        request = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n"
        overhead = len(request % b"")
        with connect(port) as sock:
            sock.sendall(request % (b"p" * (SHORT.header_bytes - overhead)))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        with connect(port) as sock:
            sock.sendall(request % (b"p" * (SHORT.header_bytes - overhead + 1)))
            answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close" in answer


def test_header_bytes_are_counted_across_reads_and_requests() -> None:
    """Trickled headers add up; each request on a kept-alive connection has its own budget."""
    with serving(make_app()) as port, connect(port) as sock:
        for _ in range(3):  # 3 x 3,000 bytes: more than the limit in total, each within it
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 3000 + b"\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # 25 bytes, then 8 x 509: 4,097
        for _ in range(8):
            sock.sendall(b"X-Pad: " + b"p" * 500 + b"\r\n")
            time.sleep(0.01)
        assert read_all(sock).startswith(b"HTTP/1.1 431 ")


def test_a_silent_connection_is_closed_after_the_read_timeout() -> None:
    with serving(make_app()) as port, connect(port) as sock:
        took = closed_within(sock, 5)
    assert SHORT.read_timeout - 0.1 <= took < SHORT.read_timeout + 1


def test_a_trickling_request_is_closed_after_the_read_timeout() -> None:
    """Sending a byte now and then does not extend the deadline (slowloris)."""
    with serving(make_app()) as port, connect(port) as sock:
        started = time.monotonic()
        try:
            for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: 1234567890123456789\r\n":
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed_within(sock, 5)
    assert time.monotonic() - started < SHORT.read_timeout + 1.5


def test_a_slow_body_is_closed_after_the_read_timeout() -> None:
    with serving(make_app()) as port, connect(port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
        took = closed_within(sock, 5)
    assert took < SHORT.read_timeout + 1


def test_an_idle_kept_alive_connection_is_closed() -> None:
    with serving(make_app()) as port, connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        took = closed_within(sock, 5)
    assert took < SHORT.keep_alive + 0.5


def test_at_the_cap_the_oldest_waiting_connection_makes_room() -> None:
    with serving(make_app()) as port:
        idle = [connect(port) for _ in range(SHORT.connections)]
        time.sleep(0.1)
        with httpx.Client() as client:  # one more: served, and the oldest idle one is closed
            assert client.get(f"http://127.0.0.1:{port}/").status_code == 200
            closed_within(idle[0], 1)
            for sock in idle[1:]:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):  # still open, nothing to read
                    sock.recv(1)
        for sock in idle:
            sock.close()


def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused() -> None:
    release = threading.Event()

    async def hold(request: Request) -> Response:
        await anyio.to_thread.run_sync(release.wait, 10)
        return Response(b"done")

    app = Starlette(routes=[Route("/hold", hold)])
    with serving(app, Limits(connections=2, read_timeout=5)) as port:
        busy = [connect(port) for _ in range(2)]
        for sock in busy:
            sock.sendall(b"GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
        with connect(port) as refused:
            assert read_all(refused, 2) == b""
        release.set()
        for sock in busy:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            sock.close()


def test_requests_take_turns_and_carry_when_they_came() -> None:
    """At most ``limit`` GET requests run the app at once; the others wait; POSTs do not."""
    running: list[int] = []
    peak: list[int] = [0]
    came: list[float] = []

    async def slow(request: Request) -> Response:
        came.append(request.state.received_at)
        running.append(1)
        peak[0] = max(peak[0], len(running))
        await anyio.sleep(0.2)
        running.pop()
        return Response(b"ok")

    app = Turns(Starlette(routes=[Route("/", slow, methods=["GET", "POST"])]), limit=2)
    with serving(app, Limits()) as port:
        rounds = []
        for method in (b"GET", b"POST"):
            socks = [connect(port) for _ in range(5)]
            started = time.monotonic()
            for sock in socks:
                sock.sendall(method + b" / HTTP/1.1\r\nHost: a\r\n\r\n")
            for sock in socks:
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
                sock.close()
            rounds.append((time.monotonic() - started, peak[0]))
            peak[0] = 0
    (get_took, get_peak), (post_took, post_peak) = rounds
    assert get_peak == 2
    assert 0.55 < get_took < 1.5  # three rounds of 0.2 s
    assert post_peak == 5
    assert post_took < 0.5
    assert max(came[:5]) - min(came[:5]) < 0.1  # all came at once, before their turn


def test_a_client_that_stops_reading_is_dropped() -> None:
    with serving(make_app()) as port, connect(port) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(SHORT.write_stall + 1)
        started = time.monotonic()
        received = read_all(sock)  # what the kernels had buffered, then the end
    assert received.startswith(b"HTTP/1.1 200 ")
    assert len(received) < 16 * 1024 * 1024
    assert time.monotonic() - started < 1


def body_app() -> Any:
    return BodyLimit(make_app(), max_bytes=1000)


def test_bodies_up_to_the_limit_pass() -> None:
    with serving(body_app()) as port, httpx.Client() as client:
        url = f"http://127.0.0.1:{port}/"
        assert client.post(url, content=b"b" * 1000).json() == {"path": "/", "body": 1000}
        streamed = client.post(url, content=iter([b"b" * 500, b"b" * 500]))
        assert streamed.json() == {"path": "/", "body": 1000}
        assert client.get(url).json() == {"path": "/", "body": 0}


def test_a_declared_large_body_gets_413_before_it_is_sent() -> None:
    with serving(body_app()) as port, connect(port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'{"error":"request body larger than 1000 bytes"}')


def test_a_streamed_large_body_gets_413() -> None:
    chunked = b"258\r\n" + b"b" * 600 + b"\r\n"  # 0x258 = 600 bytes
    with serving(body_app()) as port, connect(port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked * 2
            + b"0\r\n\r\n"
        )
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in answer


def test_the_body_limit_comes_before_basic_auth() -> None:
    """An unauthenticated client cannot send more than the limit either."""
    import bcrypt

    from synthetic_exporter.app.web_config import BasicAuth

    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    app = BodyLimit(BasicAuth(make_app(), {"prom": hashed}), max_bytes=1000)
    with serving(app) as port, httpx.Client() as client:
        url = f"http://127.0.0.1:{port}/"
        assert client.post(url, content=b"b" * 2000).status_code == 413
        assert client.post(url, content=b"b" * 10).status_code == 401
        authorised = client.post(url, content=b"b" * 2000, auth=("prom", "pw"))
        assert authorised.status_code == 413
        assert client.post(url, content=b"b" * 10, auth=("prom", "pw")).json()["body"] == 10


def test_raise_fd_limit_lifts_the_soft_limit_to_the_hard_one() -> None:
    probe = """
import resource
from synthetic_exporter.app.eventloop import backend_options
from synthetic_exporter.app.http_limits import raise_fd_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
print(raise_fd_limit() == hard, resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard)
"""
    assert fresh_python(probe) == ["True", "True"]


# The agent as a subprocess: fd limit 1,024 (the usual default, which it cannot raise), a
# short read timeout, and one check on a fresh connection every half second.
AGENT = """
import resource, sys
import synthetic_exporter.app.http_limits as limits
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
limits.READ_TIMEOUT_SECONDS = float(sys.argv.pop(1))
from synthetic_exporter.app.cli import main
sys.exit(main())
"""
CHECK = """
from synthetic_exporter import Suite, T

ping = Suite("ping")

@ping.test
async def fetch(t: T) -> None:
    assert (await t.http.get("/delay/0")).status_code == 200
"""


def start_limited_agent(tmp_path: Path, target: str, read_timeout: float) -> Any:
    checks = write_checks(tmp_path / "checks", {"ping.py": CHECK})
    env = cli_env(
        tmp_path / "state",
        target,
        SYNTHETIC_LISTEN="127.0.0.1:0",
        SYNTHETIC_INTERVAL="0.5s",
        SYNTHETIC_TARGETS__DEFAULT__FRESH_CONNECTIONS="true",
    )
    args = [sys.executable, "-c", AGENT, str(read_timeout), "--checks", str(checks), "serve"]
    return start_process(args, "synthetic-exporter listening on ", env)


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", status)
    assert match is not None
    return int(match.group(1)) / 1024


def test_a_100_mb_header_is_refused_without_being_buffered(tmp_path: Path, demo_api: str) -> None:
    agent = start_limited_agent(tmp_path, demo_api, read_timeout=10)
    host, port = agent.url.removeprefix("http://").split(":")
    try:
        exposition = httpx.get(f"{agent.url}/metrics").text
        assert "\nprocess_open_fds " in exposition
        assert "\nprocess_max_fds 1024.0\n" in exposition  # its hard limit here: nothing to raise
        before = rss_mib(agent.process.pid)
        sent = 0
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Huge: ")
            chunk = b"h" * (1024 * 1024)
            try:
                while sent < 100 * 1024 * 1024:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        grown = rss_mib(agent.process.pid) - before
        assert sent < 100 * 1024 * 1024  # the agent hung up long before
        assert grown < 20, f"RSS grew {grown:.1f} MiB"
        assert httpx.get(f"{agent.url}/-/healthy").status_code == 200
    finally:
        stop_process(agent.process)


def test_a_thousand_half_open_connections_neither_lock_out_probes_nor_starve_checks(
    tmp_path: Path, demo_api: str
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        pytest.skip("this test needs 1,000 client sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    read_timeout = 3.0
    agent = start_limited_agent(tmp_path, demo_api, read_timeout)
    host, port = agent.url.removeprefix("http://").split(":")
    flood: list[socket.socket] = []
    try:
        opened = time.monotonic()
        for _ in range(1000):
            sock = socket.socket()
            sock.settimeout(5)
            sock.connect((host, int(port)))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\n")  # never finished
            flood.append(sock)
        with httpx.Client(timeout=5) as client:
            for path in ("/-/healthy", "/-/ready", "/metrics"):
                assert client.get(f"{agent.url}{path}").status_code == 200
        for sock in flood:  # every one is closed: evicted, or at the read deadline
            sock.settimeout(max(opened + read_timeout + 2 - time.monotonic(), 0.01))
            with suppress(ConnectionResetError):
                assert sock.recv(1) == b""
        assert time.monotonic() - opened < read_timeout + 2
        # The checks kept their file descriptors: the latest run of ping passed.
        time.sleep(1)
        health = httpx.get(f"{agent.url}/healthz").json()
        assert health["suites"] == {"ping": "pass"}, health
    finally:
        for sock in flood:
            sock.close()
        stop_process(agent.process)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
