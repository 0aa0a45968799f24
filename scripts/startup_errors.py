"""Every start-up error case of tests/test_startup_errors.py, run once: the line and the time.

Runs the real CLI in a subprocess for each case (with the last command it is tried with, or
``serve``), prints a Markdown row per case (the setting, the commands, the line printed after
the header) and, on stderr, how long a process with a bad setting took to exit, per command,
and what checking a web config at start-up costs (100 bcrypt hashes of cost 10; a TLS
certificate, key and client CA). docs/reliability.md records a run.
Usage: ``.venv/bin/python scripts/startup_errors.py``.
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import test_startup_errors as cases  # noqa: E402
from tests.conftest import cli_env, run_cli  # noqa: E402


class _Factory:
    """Stands in for pytest's tmp_path_factory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path


def main() -> None:
    """Run every case; print the rows and the timings."""
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as busy:
        files = cases.files._get_wrapped_function()(_Factory(Path(tmp)))
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])

        def fill(text: str) -> str:
            return text.replace("{tmp}", str(files)).replace("{busy}", port)

        def shown(text: str) -> str:
            return fill(text).replace(str(files), "/srv").replace(port, "9479").replace("\n", "\\n")

        times: dict[str, list[float]] = {}
        for case in cases.CASES.values():
            command = "serve" if "serve" in case.commands else case.commands[-1]
            settings = {
                "SYNTHETIC_CHECKS_PATH": str(files / "checks"),
                "SYNTHETIC_LISTEN": "127.0.0.1:0",
                "SYNTHETIC_SECRETS__API_KEY": cases.SECRET,
            }
            settings.update((key, fill(value)) for key, value in case.env.items())
            env = cli_env(
                files / "state", f"https://user:{cases.URL_PASSWORD}@x.example", **settings
            )
            args = [*case.args, *cases.command_args(command), *case.command_args]
            started = time.perf_counter()
            run = run_cli([fill(arg) for arg in args], env)
            times.setdefault(command, []).append(time.perf_counter() - started)
            line = [x for x in run.stderr.splitlines() if not x.startswith("{")][-1]
            tried = ", ".join(f"`{k}={shown(v)}`" for k, v in case.env.items())
            tried = tried or " ".join(f"`{shown(a)}`" for a in (*case.args, *case.command_args))
            line = shown(line).replace("|", "\\|")
            print(f"| {tried} | {', '.join(case.commands)} | {run.returncode}: `{line}` |")
        for command, seconds in sorted(times.items()):
            print(
                f"{command}: {len(seconds)} cases, exit after {statistics.median(seconds):.2f} s"
                f" median, {max(seconds):.2f} s max",
                file=sys.stderr,
            )


def web_config_costs() -> None:
    """Print how long loading (and checking) two web configs takes."""
    import bcrypt
    import trustme

    from synthetic_exporter.app.web_config import load_web_config

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hashed = bcrypt.hashpw(b"password", bcrypt.gensalt(rounds=10)).decode()
        users = root / "users.yml"
        users.write_text(
            "basic_auth_users:\n" + "".join(f"  u{i}: '{hashed}'\n" for i in range(100))
        )
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(root / "s.pem"))
        ca.cert_pem.write_to_path(str(root / "ca.pem"))
        tls = root / "tls.yml"
        tls.write_text(
            "tls_server_config:\n  cert_file: s.pem\n  key_file: s.pem\n  client_ca_file: ca.pem\n"
        )
        load_web_config(tls)  # imports YAML and bcrypt once, outside the clocks
        for name, path in (("100 users, bcrypt cost 10", users), ("TLS with client CA", tls)):
            started = time.perf_counter()
            load_web_config(path)
            elapsed = (time.perf_counter() - started) * 1000
            print(f"web config, {name}: loaded and checked in {elapsed:.0f} ms", file=sys.stderr)
        started = time.perf_counter()
        bcrypt.checkpw(b"password", hashed.encode())
        elapsed = (time.perf_counter() - started) * 1000
        print(
            f"one bcrypt check at cost 10 (as a request pays it): {elapsed:.0f} ms", file=sys.stderr
        )


if __name__ == "__main__":
    main()
    web_config_costs()
