"""The shipped alerts: generated from their config, valid, unit-tested, documented, routable."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.generate import ConfigError, load_config, render
from tests.conftest import ROOT
from tests.exposition import series_names
from tests.prometheus import require

ALERTS = ROOT / "alerts"
CONFIG = ALERTS / "config.yaml"
RULES = ALERTS / "synthetic-exporter.rules.yml"
RUNBOOK = ALERTS / "runbook.md"
ALERTMANAGER_CONFIG = ALERTS / "alertmanager.example.yml"
PROMTOOL_TESTS = sorted((ALERTS / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = {"summary", "description", "runbook_url"}
# Metrics the rules may use before the agent exports them (a contract name from
# docs/metrics.md whose code is still being written). Remove a name when its metric lands:
# test_pending_metrics_are_not_exported_yet fails as a reminder. Empty: every metric is exported.
PENDING: set[str] = set()
# The series each metric type exposes, after the family name.


def rules() -> Iterator[dict[str, Any]]:
    """Yield every rule of the committed rule file."""
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        yield from group["rules"]


def alert_rules() -> list[dict[str, Any]]:
    """Return the alerting rules (an alert name may have several, e.g. one per window pair)."""
    return [r for r in rules() if "alert" in r]


def alert_names() -> set[str]:
    """Return the distinct alert names."""
    return {r["alert"] for r in alert_rules()}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root and capture its output."""
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)


def test_rule_file_is_what_config_generates() -> None:
    assert render(load_config(CONFIG)).encode() == RULES.read_bytes(), "run `make alerts`"


def test_promtool_checks_the_rules() -> None:
    done = run(require("promtool"), "check", "rules", "--lint-fatal", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    assert PROMTOOL_TESTS
    done = run(require("promtool"), "test", "rules", *map(str, PROMTOOL_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def _runbook_anchors() -> set[str]:
    """Return the anchors GitHub gives the runbook's headings."""
    headings = re.findall(r"^#{1,4} (.+)$", RUNBOOK.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: str(r["alert"]))
def test_alert_follows_the_conventions(rule: dict[str, Any]) -> None:
    config = load_config(CONFIG)
    name = rule["alert"]
    assert re.fullmatch(r"Synthetic[A-Z][A-Za-z0-9]+", name)
    assert rule["labels"]["severity"] in SEVERITIES
    assert "for" in rule
    annotations = rule["annotations"]
    assert set(annotations) == ANNOTATIONS
    assert "{{" not in annotations["summary"], "summary is static"
    if not rule["expr"].startswith("absent("):  # absent() has no labels to show
        assert "{{ $labels." in annotations["description"]
    base, _, anchor = annotations["runbook_url"].partition("#")
    assert base == config.runbook_base_url
    assert anchor == name.lower()
    assert anchor in _runbook_anchors(), f"alerts/runbook.md has no section {name}"


def _promtool_cases() -> tuple[set[str], set[str]]:
    """Return the alert names the promtool tests expect to fire, and those expected quiet."""
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in PROMTOOL_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    return fires, quiet


def test_every_alert_has_promtool_cases_firing_and_quiet() -> None:
    fires, quiet = _promtool_cases()
    assert alert_names() - fires == set(), "alerts never shown firing in alerts/tests"
    assert alert_names() - quiet == set(), "alerts never shown quiet (before for:) in alerts/tests"
    assert (fires | quiet) - alert_names() == set(), "promtool cases for unknown alerts"


def _names_in(expr: str) -> set[str]:
    """Return the metric and recording-rule names an expression reads (not label values)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_strings))


def test_rules_read_only_metrics_the_agent_exports() -> None:
    recorded = {r["record"] for r in rules() if "record" in r}
    used = {name for r in rules() for name in _names_in(r["expr"])}
    metrics = {n for n in used if n.startswith("synthetic_")}
    assert metrics - series_names(detailed=False) - PENDING == set()
    assert {n for n in used if ":" in n} - recorded == set(), "unknown recording rules"


def test_pending_metrics_are_not_exported_yet() -> None:
    assert PENDING & series_names(detailed=False) == set(), "now exported: remove them from PENDING"


def test_alertmanager_example_config_is_valid() -> None:
    done = run(require("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("severity", "receiver"), [("critical", "pager"), ("warning", "chat"), ("info", "chat")]
)
def test_alertmanager_example_routes_by_severity(severity: str, receiver: str) -> None:
    done = run(
        require("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        "alertname=SyntheticSuiteFailing",
        f"severity={severity}",
    )
    assert (done.returncode, done.stdout.strip()) == (0, receiver), done.stderr


def test_alertmanager_example_inhibitions() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    inhibit = {
        (tuple(r["source_matchers"]), tuple(r["target_matchers"]), tuple(r["equal"]))
        for r in config["inhibit_rules"]
    }
    agent = 'alertname=~"SyntheticExporterDown|SyntheticExporterAbsent"'
    assert (
        (agent,),
        ('alertname=~"Synthetic.+"', f"alertname!{agent.removeprefix('alertname=')}"),
        ("environment",),
    ) in inhibit
    suite = 'alertname=~"SyntheticTestFailing|SyntheticLatencyHigh|SyntheticTestFlaky"'
    assert (('alertname="SyntheticSuiteFailing"',), (suite,), ("environment", "suite")) in inhibit
    assert config["route"]["group_by"] == ["alertname", "environment", "suite"]


# The agent section's knobs, for cases that replace one of them.
AGENT_KNOBS = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["agent"]


def _write_config(tmp_path: Path, edit: dict[str, Any]) -> Path:
    """Write a copy of config.yaml with top-level keys replaced by ``edit``."""
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    raw.update(edit)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"aggregation_labels": ["location"]}, "aggregation_labels: must include environment"),
        ({"latency": {"window": "30m"}}, "latency.for: missing"),
        ({"stale": {"intervals": 2, "for": "5 minutes"}}, "stale.for: expected a duration"),
        ({"tls": {"warning_days": 14}, "tsl": {}}, "tls.warning_for: missing"),
        ({"tsl": {}}, "config: unknown keys ['tsl']"),
        (
            {"agent": {**AGENT_KNOBS, "fds_ratio": 80}},
            "agent.fds_ratio: expected a ratio between 0 and 1 (e.g. 0.8), got 80.0",
        ),
    ],
)
def test_config_errors_name_the_knob(tmp_path: Path, edit: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_write_config(tmp_path, edit))
