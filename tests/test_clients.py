"""Target clients: headers, marker, bearer secret, shared versus fresh per run."""

from __future__ import annotations

from collections.abc import Callable

from synthetic_exporter.clients import MARKER_HEADER, USER_AGENT, Targets
from synthetic_exporter.settings import Settings, TargetSettings

SettingsFor = Callable[..., Settings]


async def test_clients_carry_marker_headers_and_bearer_secret(settings_for: SettingsFor) -> None:
    settings = settings_for(
        environment="staging",
        secrets={"api_key": "sk-123456"},
        targets={
            "api": TargetSettings(
                base_url="https://api.example.com/v1",
                headers={"X-Tenant": "t1"},
                bearer_secret="api_key",
            ),
            "cdn": TargetSettings(base_url="https://cdn.example.com", fresh_connections=True),
            "h2": TargetSettings(
                base_url="https://h2.example.com", fresh_connections=True, http2=True
            ),
        },
    )
    targets = Targets(settings)
    try:
        api = targets.shared["api"]
        assert str(api.base_url) == "https://api.example.com/v1/"
        assert api.headers["authorization"] == "Bearer sk-123456"
        assert api.headers[MARKER_HEADER] == "staging"
        assert api.headers["user-agent"] == USER_AGENT
        assert api.headers["x-tenant"] == "t1"
        async with targets.for_run() as first, targets.for_run() as second:
            assert first["api"] is second["api"] is api  # pooled across runs
            # HTTP/1.1: one client; its transport keeps connections per run (test_transport).
            assert first["cdn"] is second["cdn"] is targets.shared["cdn"]
            # HTTP/2 runs on httpx's transport: a fresh client for every run.
            assert first["h2"] is not second["h2"]
            assert first["h2"] is not targets.shared["h2"]
        assert first["h2"].is_closed
        assert not first["cdn"].is_closed
    finally:
        await targets.aclose()
