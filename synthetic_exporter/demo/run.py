"""``synthetic-exporter demo``: the demo API, an S3 server and the agent, all on 127.0.0.1."""

from __future__ import annotations

import json

import anyio
from pydantic import SecretStr

from synthetic_exporter.app.serve import serve
from synthetic_exporter.app.web import bind_socket, run_server
from synthetic_exporter.core.settings import Settings, TargetSettings, listen_address
from synthetic_exporter.demo.api import create_app
from synthetic_exporter.demo.server import demo_config
from synthetic_exporter.demo.storage import (
    DEMO_ACCESS_KEY_ID,
    DEMO_BUCKET,
    DEMO_SECRET_ACCESS_KEY,
    demo_s3,
)
from synthetic_exporter.engine.loader import LoadResult
from synthetic_exporter.s3 import ACCESS_KEY_SECRET, SECRET_KEY_SECRET

FAULT_EXAMPLE = {"path": "/invoices", "method": "POST", "status": 503}
CDN_FAULT_EXAMPLE = {"path": "/cdn", "status": 502}
SLOW_ASSET_EXAMPLE = {"path": "/cdn/app/img/hero.svg", "delay_ms": 3000}
EDGE_MISS_EXAMPLE = {"path": "/edge-miss/app/"}


def demo_targets(api_url: str, s3_url: str) -> dict[str, TargetSettings]:
    """Return the targets the example suites use, pointed at the demo's servers."""
    return {
        "default": TargetSettings(base_url=api_url),
        "cdn": TargetSettings(base_url=f"{api_url}/cdn"),
        "origin": TargetSettings(base_url=f"{api_url}/origin"),
        "s3": TargetSettings(base_url=s3_url),
    }


def demo_secrets() -> dict[str, SecretStr]:
    """Return the S3 credentials of the demo (moto accepts any)."""
    return {
        ACCESS_KEY_SECRET: SecretStr(DEMO_ACCESS_KEY_ID),
        SECRET_KEY_SECRET: SecretStr(DEMO_SECRET_ACCESS_KEY),
    }


def demo_env(api_url: str, s3_url: str) -> dict[str, str]:
    """Return the same settings as ``SYNTHETIC_*`` variables, for an agent in another process."""
    env = {
        f"SYNTHETIC_TARGETS__{name.upper()}__BASE_URL": target.base_url
        for name, target in demo_targets(api_url, s3_url).items()
    }
    env.update(
        (f"SYNTHETIC_SECRETS__{name.upper()}", value.get_secret_value())
        for name, value in demo_secrets().items()
    )
    return env


def banner(api_url: str, agent_url: str, s3_url: str) -> str:
    """Return what the demo prints once every server listens."""
    fault = json.dumps(FAULT_EXAMPLE)
    cdn_fault = json.dumps(CDN_FAULT_EXAMPLE)
    slow_asset = json.dumps(SLOW_ASSET_EXAMPLE)
    edge_miss = json.dumps(EDGE_MISS_EXAMPLE)
    return f"""
synthetic-exporter demo
  status page   {agent_url}/
  metrics       {agent_url}/metrics
  health        {agent_url}/healthz
  results       {agent_url}/api/v1/results
  demo API      {api_url}  (OpenAPI: {api_url}/openapi.json)
  CDN edge      {api_url}/cdn/assets/logo.svg  (origin: {api_url}/origin/assets/logo.svg)
  web app       {api_url}/cdn/app/  (dashboard: {api_url}/cdn/app/dashboard.html)
  S3 (moto)     {s3_url}  bucket {DEMO_BUCKET}, versioned

Break something and watch /healthz turn 503 within one interval, then recover:
  curl -X POST {api_url}/admin/faults -H 'content-type: application/json' -d '{fault}'
  curl -X POST {api_url}/admin/faults -H 'content-type: application/json' -d '{cdn_fault}'
Slow the web app's hero image (its LCP; the browser check turns red), or make its assets miss:
  curl -X POST {api_url}/admin/faults -H 'content-type: application/json' -d '{slow_asset}'
  curl -X POST {api_url}/admin/faults -H 'content-type: application/json' -d '{edge_miss}'
  curl -X DELETE {api_url}/admin/faults
Stop with Ctrl-C.
"""


async def run_demo(settings: Settings, loaded: LoadResult, api_port: int, interval: float) -> None:
    """Start the demo API and S3, point the agent's targets at them, and serve until stopped."""
    _, agent_port = listen_address(settings)
    async with demo_s3("127.0.0.1") as s3_url:
        sock = bind_socket("127.0.0.1", api_port)
        api_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        demo_settings = settings.model_copy(
            update={
                "listen": f"127.0.0.1:{agent_port}",
                "targets": {**settings.targets, **demo_targets(api_url, s3_url)},
                "secrets": {**settings.secrets, **demo_secrets()},
                "interval": interval,
            }
        )

        def announce(agent_url: str) -> None:
            print(banner(api_url, agent_url, s3_url), flush=True)
            print(f"synthetic-exporter listening on {agent_url}", flush=True)

        async with anyio.create_task_group() as group:
            group.start_soon(run_server, demo_config(create_app()), sock)
            await serve(demo_settings, loaded, None, announce)
            group.cancel_scope.cancel()
