"""A Chromium process the agent launched itself, and its process tree read from ``/proc``.

The agent starts Chromium (``--remote-debugging-port=0``, a temporary profile) in a session of
its own and connects Playwright to it over CDP, so that it knows the browser's PID: a browser
that crashes or hangs is killed with its whole process group, and its processes and memory are
read from ``/proc`` without a dependency.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

DEFAULT_EXECUTABLE = Path("/usr/bin/chromium")
START_TIMEOUT = 30.0
"""Seconds Chromium may take to open its DevTools port."""
BASE_ARGS: tuple[str, ...] = (
    "--headless",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--hide-scrollbars",
    "--mute-audio",
    "--password-store=basic",
    "--use-mock-keychain",
)
"""Flags of every launch (Playwright's own launcher sets similar ones)."""


class BrowserStartError(RuntimeError):
    """Chromium could not be started."""


def chromium_args(extra: list[str]) -> list[str]:
    """Return the launch flags: :data:`BASE_ARGS`, ``--no-sandbox`` as root, then ``extra``."""
    args = list(BASE_ARGS)
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    return [*args, *extra]


@dataclass(slots=True)
class ChromiumProcess:
    """A running Chromium: its PID (also its process group), profile and DevTools endpoint."""

    process: subprocess.Popen[bytes]
    profile: Path
    endpoint: str

    @property
    def pid(self) -> int:
        """Return the browser's PID."""
        return self.process.pid

    def alive(self) -> bool:
        """Return whether the browser process still runs."""
        return self.process.poll() is None

    async def kill(self) -> None:
        """Kill the whole process tree (SIGKILL, also when stopped), reap it, drop the profile."""
        pids = tree_pids(self.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for pid in pids:  # a child that left the process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            # The browser is our child; its children go to init, which reaps them.
            while self.process.poll() is None or any(_stat(pid) for pid in pids):  # noqa: ASYNC110
                await anyio.sleep(0.02)
        await anyio.to_thread.run_sync(
            lambda: shutil.rmtree(self.profile, ignore_errors=True), abandon_on_cancel=True
        )


def executable(configured: Path | None) -> Path | None:
    """Return the Chromium to launch: the setting, else Debian's, else None (Playwright's own)."""
    if configured is not None:
        return configured
    return DEFAULT_EXECUTABLE if DEFAULT_EXECUTABLE.exists() else None


async def launch(path: Path, extra_args: list[str]) -> ChromiumProcess:
    """Start Chromium at ``path`` and wait (bounded) for its DevTools port."""
    profile = Path(tempfile.mkdtemp(prefix="synthetic-chromium-"))
    try:
        process = subprocess.Popen(  # noqa: ASYNC220 (returns at once; reaped by poll())
            [str(path), *chromium_args(extra_args), f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killed as one
        )
    except OSError as exc:
        shutil.rmtree(profile, ignore_errors=True)
        raise BrowserStartError(f"cannot start Chromium at {path}: {exc}") from None
    chromium = ChromiumProcess(process=process, profile=profile, endpoint="")
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrowserStartError(
                    f"Chromium at {path} exited with status {process.returncode} at start"
                )
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) == 2:
                chromium.endpoint = f"http://127.0.0.1:{lines[0]}"
                return chromium
            await anyio.sleep(0.02)
        raise BrowserStartError(f"Chromium at {path} did not open its DevTools port in time")
    except BaseException:
        await chromium.kill()
        raise


def _stat(pid: int) -> tuple[int, int] | None:
    """Return ``(ppid, process group)`` of a process from ``/proc``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and ')'
    return int(fields[1]), int(fields[2])


def tree_pids(root: int) -> list[int]:
    """Return ``root`` and its descendants (and its process group's members), from ``/proc``."""
    parents: dict[int, int] = {}
    found = {root} if _stat(root) is not None else set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        info = _stat(int(entry.name))
        if info is not None:
            parents[int(entry.name)] = info[0]
            if info[1] == root:
                found.add(int(entry.name))
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    return sorted(found)


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def memory_bytes(pids: list[int]) -> int:
    """Return the proportional resident memory (PSS) of ``pids``, summed.

    Chromium's processes share most of their pages; RSS would count them once per process
    (about twice the real figure). A process whose ``smaps_rollup`` cannot be read counts its
    RSS.
    """
    total = 0
    for pid in pids:
        try:
            total += _pss_bytes(pid)
        except (OSError, ValueError):
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
            except (OSError, IndexError, ValueError):
                continue
    return total


def _pss_bytes(pid: int) -> int:
    """Return one process's PSS from ``/proc/<pid>/smaps_rollup`` (Linux 4.14 and later)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024  # kB
    raise ValueError(f"no Pss line for process {pid}")
