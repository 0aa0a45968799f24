"""Soak the cleanup path: kill the agent at random moments, restart it, count what leaked.

    python scripts/soak.py [--kills 20] [--sigterms 1] [--create-ms 200] [--seed N] [--json]

Runs the demo API on 127.0.0.1 with every ``POST /customers`` answered ``--create-ms`` after the
customer exists (the window in which a killed agent used to lose it), then starts the real agent
(``synthetic-exporter serve``, 1 s intervals) on the example suites ``--kills`` times, each time
sending ``kill -9`` at a random moment; then ``--sigterms`` times ending it with SIGTERM
(counting what is left on the API after each); then one clean ``run --once``, which sweeps at
start-up. Prints how many synthetic customers were created and how many are left on the API (the
goal is 0), and what the sweeps found. ``make soak`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from servers import START_MARK, start, stop

ROOT = Path(__file__).resolve().parent.parent
MARKER = {"X-Synthetic-Test": "soak"}


@dataclass
class Figures:
    """What one soak measured."""

    kills: int
    sigterms: int
    create_ms: int
    seed: int
    created: int
    shutdown_grace: float
    left_after_sigterms: list[int]
    left_before_clean_start: int
    leaked: int
    found_by_key: int
    untracked_deleted: int
    leftover_entries_adopted: int
    seconds: float


def agent_env(api: str, state: Path, shutdown_grace: float) -> dict[str, str]:
    """Only the SYNTHETIC_ settings of the soak: the demo target, short intervals."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    env.update(
        SYNTHETIC_TARGETS__DEFAULT__BASE_URL=api,
        SYNTHETIC_STATE_DIR=str(state),
        SYNTHETIC_LISTEN="127.0.0.1:0",
        SYNTHETIC_INTERVAL="1s",
        SYNTHETIC_SWEEP_INTERVAL="2s",
        SYNTHETIC_SHUTDOWN_GRACE=str(shutdown_grace),
        SYNTHETIC_LOG_FORMAT="json",
        SYNTHETIC_ENVIRONMENT="soak",
    )
    return env


def stats(api: str) -> dict[str, int]:
    """The demo API's counts."""
    counts: dict[str, int] = httpx.get(f"{api}/admin/stats", timeout=5).json()
    return counts


def soak(
    kills: int,
    sigterms: int,
    create_ms: int,
    checks: Path,
    seed: int,
    max_life: float,
    shutdown_grace: float,
) -> Figures:
    """Run the whole soak in a temporary directory; return its figures."""
    rng = random.Random(seed)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        demo_args = [sys.executable, "-m", "synthetic_exporter.demo", "--port", "0"]
        demo, api = start(demo_args, work / "demo.log", dict(os.environ))
        try:
            fault = {"path": "/customers", "method": "POST", "delay_after_ms": create_ms}
            assert httpx.post(f"{api}/admin/faults", json=fault, timeout=5).status_code == 201
            env = agent_env(api, work / "state", shutdown_grace)
            log = work / "agent.log"
            serve = [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "serve"]
            after_sigterm: list[int] = []
            for number in range(kills + sigterms):
                with log.open("a") as out:
                    out.write(f"{START_MARK}life {number}\n")
                agent, _ = start(serve, log, env)
                time.sleep(rng.uniform(0.2, max_life))
                if number < kills:
                    stop(agent, signal.SIGKILL)
                else:
                    stop(agent, signal.SIGTERM)
                    after_sigterm.append(stats(api)["synthetic_customers"])
            left = stats(api)["synthetic_customers"]
            once = [sys.executable, "-m", "synthetic_exporter", "--checks", str(checks), "run"]
            clean = subprocess.run(
                [*once, "--once"], env=env, capture_output=True, text=True, timeout=120
            )
            text = log.read_text(errors="replace") + clean.stderr
            counts = stats(api)
        finally:
            stop(demo)
    adopted = sum(int(n) for n in re.findall(r"found (\d+) leftover test resources", text))
    return Figures(
        kills=kills,
        sigterms=sigterms,
        create_ms=create_ms,
        seed=seed,
        created=counts["synthetic_customers_created"],
        shutdown_grace=shutdown_grace,
        left_after_sigterms=after_sigterm,
        left_before_clean_start=left,
        leaked=counts["synthetic_customers"],
        found_by_key=text.count("of an unfinished create by its key"),
        untracked_deleted=text.count("deleting untracked synthetic"),
        leftover_entries_adopted=adopted,
        seconds=round(time.monotonic() - began, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kill -9 this many times")
    parser.add_argument("--sigterms", type=int, default=1, help="then SIGTERM this many times")
    parser.add_argument("--create-ms", type=int, default=200, help="how long a create answers")
    parser.add_argument("--checks", type=Path, default=ROOT / "checks", help="checks directory")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--max-life", type=float, default=3.0, help="longest life before a kill")
    parser.add_argument(
        "--shutdown-grace", type=float, default=10.0, help="SYNTHETIC_SHUTDOWN_GRACE, seconds"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    seed = random.randrange(1_000_000) if args.seed is None else args.seed
    figures = soak(
        args.kills,
        args.sigterms,
        args.create_ms,
        args.checks,
        seed,
        args.max_life,
        args.shutdown_grace,
    )
    if args.json:
        print(json.dumps(asdict(figures)))
        return
    print(f"{figures.kills} x kill -9, then {figures.sigterms} x SIGTERM, at random moments")
    print(f"(seed {figures.seed}), creates answered after {figures.create_ms} ms:")
    print(f"  synthetic customers created:           {figures.created}")
    print(f"  left on the API after each SIGTERM:    {figures.left_after_sigterms}")
    print(f"  left on the API before the clean start: {figures.left_before_clean_start}")
    print(f"  ledger entries adopted at start-ups:   {figures.leftover_entries_adopted}")
    print(f"  found by their intent's key:           {figures.found_by_key}")
    print(f"  untracked data deleted (grace):        {figures.untracked_deleted}")
    print(f"  leaked after the clean start-up:       {figures.leaked}")
    print(f"  ({figures.seconds} s)")


if __name__ == "__main__":
    main()
