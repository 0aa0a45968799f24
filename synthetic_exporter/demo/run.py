"""``synthetic-exporter demo``: the demo API and the agent, both on 127.0.0.1."""

from __future__ import annotations

import json

import anyio

from synthetic_exporter.demo.api import create_app
from synthetic_exporter.loader import LoadResult
from synthetic_exporter.serve import serve
from synthetic_exporter.settings import Settings, TargetSettings, listen_address
from synthetic_exporter.web import bind_socket, config_for, run_server

FAULT_EXAMPLE = {"path": "/invoices", "method": "POST", "status": 503}


def banner(api_url: str, agent_url: str) -> str:
    """Return what the demo prints once both servers listen."""
    fault = json.dumps(FAULT_EXAMPLE)
    return f"""
synthetic-exporter demo
  status page   {agent_url}/
  metrics       {agent_url}/metrics
  health        {agent_url}/healthz
  results       {agent_url}/api/v1/results
  demo API      {api_url}

Break something and watch /healthz turn 503 within one interval, then recover:
  curl -X POST {api_url}/admin/faults -H 'content-type: application/json' -d '{fault}'
  curl -X DELETE {api_url}/admin/faults
Stop with Ctrl-C.
"""


async def run_demo(settings: Settings, loaded: LoadResult, api_port: int, interval: float) -> None:
    """Start the demo API, point the agent's default target at it, and serve until stopped."""
    sock = bind_socket("127.0.0.1", api_port)
    api_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    _, agent_port = listen_address(settings)
    demo_settings = settings.model_copy(
        update={
            "listen": f"127.0.0.1:{agent_port}",
            "targets": {**settings.targets, "default": TargetSettings(base_url=api_url)},
            "interval": interval,
        }
    )

    def announce(agent_url: str) -> None:
        print(banner(api_url, agent_url), flush=True)
        print(f"synthetic-exporter listening on {agent_url}", flush=True)

    async with anyio.create_task_group() as group:
        group.start_soon(run_server, config_for(create_app()), sock)
        await serve(demo_settings, loaded, None, announce)
        group.cancel_scope.cancel()
