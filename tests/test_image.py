"""The container image, built from the Dockerfile and run, without a Docker engine.

scripts/build-image.sh builds it with buildah (vfs storage, chroot isolation) on a Debian base
that mmdebstrap makes from the Debian mirror, with the Python wheels from the lock files. The
test runs the image's ENTRYPOINT and CMD (``synthetic-exporter serve``) as the image's USER with
``buildah run`` on the host's network, its example checks pointed at a demo API on 127.0.0.1, and
asserts what a Kubernetes probe and a Prometheus scrape would see, and the process's real uid.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Server, _pump

NONROOT_UID = 65532
IMAGE = "localhost/synthetic-exporter:test"
CACHE = ROOT / ".cache" / "image"
BUILDAH = [
    "buildah",
    "--root",
    str(CACHE / "storage"),
    "--runroot",
    str(CACHE / "run"),
    "--storage-driver",
    "vfs",
]
BUILD_TIMEOUT_SECONDS = 540
# `buildah run` sets up the chroot before the agent starts: more than conftest's 20 s on a busy box.
START_TIMEOUT_SECONDS = 60
LISTENING = "synthetic-exporter listening on "
CONTAINER_PREFIX = "synthetic-exporter-test-"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT_SECONDS + 60)]


def buildah(*args: str, timeout: float = 60) -> str:
    """Run buildah on the build script's image store; return its stdout."""
    done = subprocess.run(
        [*BUILDAH, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr}"
    return done.stdout


def require_tools() -> None:
    """Skip where the image cannot be built (not root, no buildah); in CI, fail instead."""
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    reason = ""
    if os.geteuid() != 0:
        reason = "building the image needs root (mmdebstrap, buildah --isolation chroot)"
    elif missing:
        reason = f"{', '.join(missing)} missing: bash scripts/install-system-deps.sh"
    if reason and os.environ.get("CI"):
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def image() -> str:
    """Build the image with scripts/build-image.sh (the base is cached in .cache/image)."""
    require_tools()
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        env={**os.environ, "IMAGE": IMAGE},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == IMAGE
    print(f"image built in {time.monotonic() - started:.1f} s")
    return IMAGE


def remove_stale_containers() -> None:
    """Remove the containers of earlier test runs whose pytest process is gone (killed runs)."""
    names = buildah("containers", "--all", "--noheading", "--format", "{{.ContainerName}}")
    for name in names.split():
        pid = name.removeprefix(CONTAINER_PREFIX)
        if name.startswith(CONTAINER_PREFIX) and not Path(f"/proc/{pid}").exists():
            buildah("rm", name)


def start_listening(args: list[str]) -> Server:
    """Start ``buildah run ...`` and wait (bounded) for the agent's 'listening on URL' line."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    seen = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and (process.poll() is None or not lines.empty()):
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if LISTENING in line:
            return Server(line.split(LISTENING, 1)[1].split()[0], process, lines)
    kill_tree(process)
    output = "".join(seen)
    raise AssertionError(f"the container did not start (exit {process.returncode}): {output}")


def image_config(image: str) -> dict[str, object]:
    """The image's OCI config (Entrypoint, Cmd, User, Env)."""
    inspected = json.loads(buildah("inspect", "--type", "image", image))
    config: dict[str, object] = inspected["OCIv1"]["config"]
    return config


def children(pid: int) -> list[int]:
    """The PIDs of a process's direct children, from /proc."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def descendants(root_pid: int) -> list[int]:
    """A process's children, their children and so on (parents first)."""
    found: list[int] = []
    todo = [root_pid]
    while todo:
        kids = children(todo.pop(0))
        found += kids
        todo += kids
    return found


def kill_tree(process: subprocess.Popen[str]) -> None:
    """SIGKILL ``buildah run`` and everything under it (the agent would outlive buildah)."""
    for pid in [*reversed(descendants(process.pid)), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=20)


def agent_pid(root_pid: int) -> int:
    """The PID of the agent's Python process under ``buildah run`` (bounded search)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for pid in descendants(root_pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"/python") and b"/opt/venv/bin/synthetic-exporter" in argv:
                return pid
        time.sleep(0.1)
    raise AssertionError("no /opt/venv/bin/python synthetic-exporter process under buildah run")


def status_ids(pid: int) -> dict[str, list[int]]:
    """The real, effective, saved and filesystem uids and gids of a process."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {
        key: [int(v) for v in line.split(":", 1)[1].split()]
        for line in lines
        for key in ("Uid", "Gid")
        if line.startswith(f"{key}:")
    }


def stop_container(server: Server, name: str) -> None:
    """SIGTERM the agent (it drains), then end ``buildah run`` and remove the container."""
    try:
        if server.process.poll() is None:
            try:
                os.kill(agent_pid(server.process.pid), signal.SIGTERM)
                server.process.wait(timeout=20)
            except (AssertionError, ProcessLookupError, subprocess.TimeoutExpired):
                kill_tree(server.process)
    finally:
        subprocess.run([*BUILDAH, "rm", name], capture_output=True, timeout=60, check=False)


@pytest.fixture
def container(image: str, demo_api: str) -> Iterator[Server]:
    """The image's ENTRYPOINT + CMD as its USER, on 127.0.0.1 (host network), against the demo."""
    config = image_config(image)
    command = [*config["Entrypoint"], *config["Cmd"]]  # type: ignore[misc]
    remove_stale_containers()
    name = f"{CONTAINER_PREFIX}{os.getpid()}"
    buildah("from", "--pull-never", "--name", name, image)
    try:
        server = start_listening(
            [
                *BUILDAH,
                "run",
                "--isolation",
                "chroot",
                "--network",
                "host",
                "--env",
                "SYNTHETIC_LISTEN=127.0.0.1:0",
                "--env",
                f"SYNTHETIC_TARGETS__DEFAULT__BASE_URL={demo_api}",
                name,
                "--",
                *command,
            ]
        )
    except BaseException:
        subprocess.run([*BUILDAH, "rm", name], capture_output=True, timeout=60, check=False)
        raise
    try:
        yield server
    finally:
        stop_container(server, name)


def test_image_config_matches_the_dockerfile(image: str) -> None:
    config = image_config(image)
    assert config["User"] == f"{NONROOT_UID}:{NONROOT_UID}"
    assert config["Entrypoint"] == ["synthetic-exporter"]
    assert config["Cmd"] == ["serve"]
    assert "SYNTHETIC_CHECKS_PATH=/app/checks" in config["Env"]  # type: ignore[operator]


def test_container_serves_health_and_metrics_as_the_nonroot_user(container: Server) -> None:
    pid = agent_pid(container.process.pid)
    ids = status_ids(pid)
    assert ids["Uid"] == [NONROOT_UID] * 4, ids
    assert ids["Gid"] == [NONROOT_UID] * 4, ids

    healthy = httpx.get(f"{container.url}/-/healthy", timeout=5)
    assert healthy.status_code == 200, healthy.text

    # The example checks run at start-up against the demo API: wait (bounded) for a pass.
    deadline = time.monotonic() + 30
    metrics, signup = "", []
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{container.url}/metrics", timeout=5).text
        signup = [
            line
            for line in metrics.splitlines()
            if line.startswith("synthetic_test_success{") and 'suite="signup"' in line
        ]
        if signup and all(line.endswith(" 1.0") for line in signup):
            break
        time.sleep(0.5)
    assert 'synthetic_exporter_build_info{environment="default",version="0.1.0"} 1.0' in metrics
    assert signup, "no synthetic_test_success series of the signup suite"
    assert all(line.endswith(" 1.0") for line in signup), signup
    # No demo client in the image (no demo extra): the typed-client example skips, it does not
    # fail to load.
    assert "synthetic_exporter_load_errors" in metrics
    assert 'synthetic_exporter_load_errors{environment="default"} 0.0' in metrics
    assert "browser_dashboard" not in metrics, "the default image drops the browser examples"


BROWSER_IMAGE = "localhost/synthetic-exporter:test-browser"


@pytest.fixture(scope="module")
def browser_image() -> str:
    """Build the browser variant (BROWSER=1: Debian's chromium in the base, the browser lock)."""
    require_tools()
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        env={**os.environ, "IMAGE": BROWSER_IMAGE, "BROWSER": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == BROWSER_IMAGE
    print(f"browser image built in {time.monotonic() - started:.1f} s")
    return BROWSER_IMAGE


def test_browser_variant_runs_the_browser_example_as_the_nonroot_user(
    browser_image: str, demo_api: str
) -> None:
    """Chromium and Playwright are in the image: the demo's browser check passes in it."""
    config = image_config(browser_image)
    assert config["User"] == f"{NONROOT_UID}:{NONROOT_UID}"
    command = [*config["Entrypoint"], *config["Cmd"]]  # type: ignore[misc]
    remove_stale_containers()
    name = f"{CONTAINER_PREFIX}{os.getpid()}-browser"
    buildah("from", "--pull-never", "--name", name, browser_image)
    env = {
        "SYNTHETIC_LISTEN": "127.0.0.1:0",
        "SYNTHETIC_TARGETS__DEFAULT__BASE_URL": demo_api,
        "SYNTHETIC_TARGETS__CDN__BASE_URL": f"{demo_api}/cdn",
        "SYNTHETIC_BROWSER_ARGS": '["--no-sandbox"]',  # as the chart sets it (no user namespaces)
        "XDG_CACHE_HOME": "/tmp/.cache",
        "XDG_CONFIG_HOME": "/tmp/.config",
    }
    flags = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    try:
        run = [*BUILDAH, "run", "--isolation", "chroot", "--network", "host", *flags]
        server = start_listening([*run, name, "--", *command])
    except BaseException:
        subprocess.run([*BUILDAH, "rm", name], capture_output=True, timeout=60, check=False)
        raise
    try:
        assert status_ids(agent_pid(server.process.pid))["Uid"] == [NONROOT_UID] * 4
        wanted = 'synthetic_test_success{environment="default",suite="browser_dashboard",'
        deadline = time.monotonic() + 90
        metrics, browser = "", []
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
            browser = [line for line in metrics.splitlines() if line.startswith(wanted)]
            if browser and all(line.endswith(" 1.0") for line in browser):
                break
            time.sleep(1)
        health = httpx.get(f"{server.url}/healthz", timeout=5).text
        assert browser, health
        assert all(line.endswith(" 1.0") for line in browser), (browser, health)
        assert 'synthetic_exporter_load_errors{environment="default"} 0.0' in metrics
        assert "synthetic_browser_last_vital_seconds{" in metrics
    finally:
        stop_container(server, name)
