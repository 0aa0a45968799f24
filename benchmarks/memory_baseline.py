"""Resident memory of a plain process, stage by stage (``python -m benchmarks.memory_baseline``).

``--mode baseline``: Python with anyio, httpx and prometheus_client, one client (one request
made) and a registry of ``--series`` series, rendered once: the issue's 39 MiB reference.
``--mode agent-imports``: what importing the agent's modules costs, step by step. Prints one
JSON object ``{stage: rss_bytes}``. Imports happen inside the stages, on purpose.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def baseline(target: str, series: int) -> dict[str, int]:
    stages = {"python": rss()}
    import anyio
    import httpx
    import prometheus_client

    stages["imports"] = rss()

    async def one_request() -> None:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{target}/delay/0")
            response.raise_for_status()

    anyio.run(one_request)
    stages["client"] = rss()
    from benchmarks.baseline import baseline_registry

    registry = baseline_registry(series)
    prometheus_client.generate_latest(registry)
    stages["series"] = rss()
    return stages


def agent_imports() -> dict[str, int]:
    stages = {"python": rss()}
    import anyio  # noqa: F401
    import httpx  # noqa: F401
    import prometheus_client  # noqa: F401

    stages["anyio, httpx, prometheus_client"] = rss()
    import pydantic  # noqa: F401
    import pydantic_settings  # noqa: F401

    stages["+ pydantic, pydantic-settings"] = rss()
    import starlette.applications  # noqa: F401
    import uvicorn  # noqa: F401

    stages["+ starlette, uvicorn"] = rss()
    import loguru  # noqa: F401

    stages["+ loguru"] = rss()
    import synthetic_exporter.app.cli
    import synthetic_exporter.app.serve  # noqa: F401

    stages["+ the agent's own modules (cli, serve, ...)"] = rss()
    import _pytest.assertion.rewrite  # noqa: F401

    stages["+ pytest's assertion rewriting (check files)"] = rss()
    return stages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["baseline", "agent-imports"], required=True)
    parser.add_argument("--target", default="")
    parser.add_argument("--series", type=int, default=10000)
    args = parser.parse_args()
    if args.mode == "baseline":
        print(json.dumps(baseline(args.target, args.series)), flush=True)
    else:
        print(json.dumps(agent_imports()), flush=True)


if __name__ == "__main__":
    main()
