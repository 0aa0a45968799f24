"""The shipped alerts end to end: agent -> Prometheus (rules) -> Alertmanager (example) -> webhook.

A fault in the demo API fails the ``invoices`` suite; a real Prometheus, loading a copy of the
shipped rules with every ``for:`` shortened, fires SyntheticSuiteFailing; a real Alertmanager,
running a copy of the example config with its receivers pointed at a local webhook, pages for
it, and sends the resolved notification once the fault is gone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.alertmanager import Notification, Webhook, start_alertmanager
from tests.conftest import ROOT, start_agent, stop_process
from tests.prometheus import require, start_prometheus

pytestmark = pytest.mark.slow

RULES = ROOT / "alerts" / "synthetic-exporter.rules.yml"
ALERTMANAGER_CONFIG = ROOT / "alerts" / "alertmanager.example.yml"
SHORT_FOR = "1s"
WAIT_SECONDS = 60
ENVIRONMENT = "e2e"
FAULT = {"path": "/invoices", "method": "POST", "status": 503}


def shortened_rules(target: Path) -> Path:
    """Write a copy of the shipped rules with every ``for:`` set to SHORT_FOR; return it."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = SHORT_FOR
    target.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return target


def local_alertmanager_config(target: Path, webhook: str) -> Path:
    """Write a copy of the example config: receivers post to ``webhook``/<name>, timers short."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{webhook}/{receiver['name']}"
    _shorten_timers(config["route"], root=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


def _shorten_timers(route: dict[str, Any], root: bool = False) -> None:
    """Set short group and repeat intervals on the root route, and where a child overrides them."""
    short = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1m"}
    for key, value in short.items():
        if root or key in route:
            route[key] = value
    for child in route.get("routes", []):
        _shorten_timers(child)


def suite_failing(status: str) -> Callable[[Notification], bool]:
    """Return a matcher of notifications of SyntheticSuiteFailing for invoices in ``status``."""

    def matches(n: Notification) -> bool:
        alerts = n.alerts(alertname="SyntheticSuiteFailing", suite="invoices")
        return n.body["status"] == status and any(a["status"] == status for a in alerts)

    return matches


def expected_annotations() -> dict[str, str]:
    """Return SyntheticSuiteFailing's annotations from the shipped rules, rendered for invoices."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rule = next(
        r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "SyntheticSuiteFailing"
    )
    labels = {"suite": "invoices", "environment": ENVIRONMENT}
    rendered = {}
    for key, template in rule["annotations"].items():
        for name, value in labels.items():
            template = template.replace(f"{{{{ $labels.{name} }}}}", value)
        rendered[key] = template
    return rendered


def test_a_failing_suite_pages_then_resolves(tmp_path: Path, fresh_demo_api: str) -> None:
    require("prometheus")
    require("prometheus-alertmanager")
    rules = shortened_rules(tmp_path / "rules.yml")
    # Fail invoices from its first run; signup (its dependency) keeps passing.
    assert httpx.post(f"{fresh_demo_api}/admin/faults", json=FAULT).status_code == 201

    with contextlib.ExitStack() as stack:
        webhook = stack.enter_context(Webhook())
        config = local_alertmanager_config(tmp_path / "alertmanager.yml", webhook.url)
        alertmanager = start_alertmanager(tmp_path / "alertmanager", config)
        stack.callback(alertmanager.stop)
        agent = start_agent(
            ROOT / "checks",
            tmp_path / "state",
            fresh_demo_api,
            SYNTHETIC_INTERVAL="1s",
            SYNTHETIC_ENVIRONMENT=ENVIRONMENT,
        )
        stack.callback(stop_process, agent.process)
        prometheus = start_prometheus(
            tmp_path / "prometheus",
            [agent.url.removeprefix("http://")],
            rule_files=[rules],
            alertmanager=alertmanager.address,
            interval="1s",
        )
        stack.callback(prometheus.stop)

        # Pages: the critical alert reaches the pager receiver with its labels and annotations.
        firing = webhook.wait_for(suite_failing("firing"), WAIT_SECONDS)
        assert firing.receiver == "pager"
        [alert] = firing.alerts(alertname="SyntheticSuiteFailing", suite="invoices")
        assert alert["labels"] == {
            "alertname": "SyntheticSuiteFailing",
            "severity": "critical",
            "environment": ENVIRONMENT,
            "suite": "invoices",
            "job": "synthetic-exporter",
            "instance": agent.url.removeprefix("http://"),
        }
        assert alert["annotations"] == expected_annotations()
        assert firing.body["groupLabels"] == {
            "alertname": "SyntheticSuiteFailing",
            "environment": ENVIRONMENT,
            "suite": "invoices",
        }

        # The failing test's own alert is held back by the suite's (inhibit_rules).
        inhibited = _wait_for_state(alertmanager.alerts, "SyntheticTestFailing", "suppressed")
        assert inhibited["labels"]["test"] == "issue_invoice"
        # One outage, one page: signup (invoices' dependency) passes, and payments (which
        # depends on invoices) is skipped, not failed.
        for quiet in ("signup", "payments"):
            assert not any(
                n.alerts(alertname="SyntheticSuiteFailing", suite=quiet)
                for n in webhook.notifications()
            ), quiet

        # The fault is gone: invoices passes again, and the pager hears that it resolved.
        assert httpx.delete(f"{fresh_demo_api}/admin/faults").status_code == 204
        resolved = webhook.wait_for(suite_failing("resolved"), WAIT_SECONDS)
        assert resolved.receiver == "pager"


def _wait_for_state(
    alerts: Callable[[], list[dict[str, Any]]],
    alertname: str,
    state: str,
    seconds: float = WAIT_SECONDS,
) -> dict[str, Any]:
    """Poll Alertmanager (bounded) until invoices' ``alertname`` is in ``state``; return it."""
    deadline = time.monotonic() + seconds
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [
            a
            for a in alerts()
            if a["labels"].get("alertname") == alertname and a["labels"].get("suite") == "invoices"
        ]
        if found and all(a["status"]["state"] == state for a in found):
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"{alertname} for invoices not {state} within {seconds}s: {found}")
