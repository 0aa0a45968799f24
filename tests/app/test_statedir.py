"""The state directory lock, and the one-line errors of a directory that cannot be used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic_exporter.app.statedir import LOCK_FILE, StateDirError, StateDirInUse, hold_state_dir

HOLD = """
import sys, time
from pathlib import Path
from synthetic_exporter.app.statedir import hold_state_dir
with hold_state_dir(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(30)
"""


def refusal(path: Path) -> str:
    """Return the one-line message with which ``path`` is refused."""
    with pytest.raises(StateDirError) as error, hold_state_dir(path):
        pass
    return str(error.value)


def test_creates_the_directory_and_writes_the_pid(tmp_path: Path) -> None:
    state = tmp_path / "a" / "b"
    with hold_state_dir(state):
        assert (state / LOCK_FILE).read_text() == str(os.getpid())


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StateDirInUse) as error, hold_state_dir(tmp_path):
            pass
        assert f"in use by another agent process (pid {holder.pid})" in str(error.value)
    finally:
        holder.kill()
        holder.communicate(timeout=10)
    with hold_state_dir(tmp_path):  # free again once the holder is gone
        pass


def test_a_file_is_not_a_state_directory(tmp_path: Path) -> None:
    file = tmp_path / "state"
    file.write_text("")
    assert refusal(file) == f"{file} is not a directory"
    assert refusal(file / "sub") == f"cannot create {file}/sub: Not a directory"


def test_a_directory_that_cannot_be_created() -> None:
    path = Path("/proc/synthetic-exporter-state")
    assert refusal(path).startswith(f"cannot create {path}: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any directory")
def test_a_read_only_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o500)
    assert refusal(state) == f"{state} is not writable by this process (uid {os.geteuid()})"


def test_a_lock_file_that_cannot_be_opened(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).mkdir()
    assert refusal(tmp_path) == f"cannot write {tmp_path / LOCK_FILE}: Is a directory"
