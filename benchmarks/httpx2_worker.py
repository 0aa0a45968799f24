"""The agent worker on httpx2: ``python -m benchmarks.httpx2_worker`` (see benchmarks.httpx2).

``httpx2.alias_httpx()`` runs before anything imports httpx: ``import httpx`` (and httpcore)
then give httpx2 (and httpcore2) process-wide, and the worker is the usual one.
"""

from __future__ import annotations

import importlib


def main() -> None:
    importlib.import_module("httpx2").alias_httpx()
    from benchmarks.agent_worker import main as worker_main

    worker_main()


if __name__ == "__main__":
    main()
