"""IP family of a dual-stack name, with the system's own resolver: the agent picks the family.

Two listeners share one port number, on 127.0.0.1 and on ::1, and answer ``/family`` with the
family they were reached on. The agent runs ``run --once`` in a subprocess whose resolver sees a
hosts file of this test's: ``dual.test`` has both addresses, ``v4only.test`` only 127.0.0.1. It
is given that file in a private mount namespace (``unshare -rm``: an unprivileged user and
mount namespace, nothing changes for other processes). Where that is not allowed (some CI
runners restrict user namespaces) but ``localhost`` already resolves to both loopbacks, as on
most machines with IPv6, the agent runs as it is with ``localhost`` as the dual-stack name and
``127.0.0.1`` as the IPv4-only host. Otherwise, and on machines without ::1, the test skips.
"""

from __future__ import annotations

import functools
import json
import shutil
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from tests.conftest import cli_env, write_checks
from tests.http.net_servers import H2Server, Http1Server, has_ipv6_loopback

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no ::1"),
]
HOSTS = "127.0.0.1 dual.test v4only.test\n::1 dual.test\n"
MOUNT_HOSTS = 'mount --bind "$0" /etc/hosts && exec "$@"'
CHECKS = """
from synthetic_exporter import Suite, T

EXPECTED = {"prefer6": "v6", "prefer4": "v4", "fallback6": "v4", "only6": None}


def family_suite(name: str, expected: str | None) -> Suite:
    suite = Suite(name)

    @suite.test
    async def family(t: T) -> None:
        r = await t.client(name).get("/family")
        assert r.text == expected

    return suite


for target, family in EXPECTED.items():
    for kind in ("", "_h2"):
        globals()["suite_" + target + kind] = family_suite(target + kind, family)
"""


@dataclass(frozen=True)
class Names:
    """The dual-stack name, the IPv4-only host, and the command prefix that makes them so."""

    dual: str
    v4only: str
    prefix: tuple[str, ...]


@functools.cache
def _private_hosts_works(hosts: str) -> bool:
    """Tell whether ``unshare -rm`` can give a process its own /etc/hosts here."""
    if shutil.which("unshare") is None:
        return False
    probe = "import socket; print(sorted({i[4][0] for i in socket.getaddrinfo('dual.test', 80)}))"
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", MOUNT_HOSTS, hosts, sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == "['127.0.0.1', '::1']"


def _localhost_is_dual_stack() -> bool:
    try:
        infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return {info[4][0] for info in infos} >= {"127.0.0.1", "::1"}


@pytest.fixture(scope="module")
def names(tmp_path_factory: pytest.TempPathFactory) -> Names:
    """How this machine can offer a dual-stack name to the agent (or skip)."""
    hosts = tmp_path_factory.mktemp("hosts") / "hosts"
    hosts.write_text(HOSTS, encoding="ascii")
    if _private_hosts_works(str(hosts)):
        return Names(
            "dual.test", "v4only.test", ("unshare", "-rm", "sh", "-c", MOUNT_HOSTS, str(hosts))
        )
    if _localhost_is_dual_stack():
        return Names("localhost", "127.0.0.1", ())
    pytest.skip("no dual-stack name: unshare -rm is not allowed and localhost is IPv4 only")


def targets_env(names: Names, http1: int, http2: int, bundle: Path) -> dict[str, str]:
    """Return the target variables: each case on both HTTP paths."""
    cases = {
        "prefer6": (names.dual, {"IP_PROTOCOL": "ip6"}),
        "prefer4": (names.dual, {"IP_PROTOCOL": "ip4"}),
        "fallback6": (names.v4only, {"IP_PROTOCOL": "ip6"}),
        "only6": (names.v4only, {"IP_PROTOCOL": "ip6", "IP_PROTOCOL_FALLBACK": "false"}),
    }
    env = {}
    for target, (host, options) in cases.items():
        for kind, url in (("", f"http://{host}:{http1}"), ("_h2", f"https://{host}:{http2}")):
            prefix = f"SYNTHETIC_TARGETS__{(target + kind).upper()}__"
            env[prefix + "BASE_URL"] = url
            env.update({prefix + key: value for key, value in options.items()})
            if kind:
                env[prefix + "HTTP2"] = "true"
                env[prefix + "CA_BUNDLE"] = str(bundle)
    return env


async def test_the_preferred_family_of_a_dual_stack_name_answers(
    names: Names, ca: trustme.CA, tmp_path: Path
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("dual.test", "v4only.test", "localhost", "127.0.0.1").configure_cert(context)
    context.set_alpn_protocols(["h2"])
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    checks = write_checks(tmp_path / "checks", {"family.py": CHECKS})
    output = tmp_path / "results.json"
    both = ("127.0.0.1", "::1")
    async with Http1Server(both, "hello") as http1, H2Server(both, "hello", context) as http2:
        env = cli_env(
            tmp_path / "state", None, **targets_env(names, http1.port, http2.port, bundle)
        )
        command = [*names.prefix, sys.executable, "-m", "synthetic_exporter", "--checks"]
        command += [str(checks), "run", "--once", "--json", str(output)]
        with anyio.fail_after(60):
            done = await anyio.run_process(command, env=env, check=False)
    assert done.returncode == 1, done.stderr.decode()  # only6 fails
    tests = {t["suite"]: t for s in json.loads(output.read_text())["suites"] for t in s["tests"]}
    for kind in ("", "_h2"):
        results = {target: tests[target + kind] for target in ("prefer6", "prefer4", "fallback6")}
        for target, family in (("prefer6", 6), ("prefer4", 4), ("fallback6", 4)):
            test: dict[str, Any] = results[target]
            assert test["outcome"] == "passed", (target + kind, test["message"])
            (request,) = test["requests"]
            assert request["ip_family"] == family
            assert request["remote_address"] == ("::1" if family == 6 else "127.0.0.1")
        only6 = tests["only6" + kind]
        assert only6["outcome"] == "error"
        expected = f"ConnectError: no IPv6 address for host {names.v4only}"
        assert only6["message"].startswith(expected), only6["message"]
        (request,) = only6["requests"]
        assert request["error"].startswith(expected)
        assert (request["status"], request["remote_address"], request["ip_family"]) == (
            None,
            "",
            None,
        )
        if names.v4only != "127.0.0.1":
            assert "resolve" in request["phases"]  # the name was resolved, and timed
