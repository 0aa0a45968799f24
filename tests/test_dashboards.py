"""Grafana dashboards: the committed JSON is what grafana/dashboards.py writes, every dashboard
has the shared variables and well-formed panels, every metric a query names is one the agent
exports, and (slow) every panel query runs against a real Prometheus scraping the real agent.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from grafana import dashboards
from tests.conftest import ROOT, start_demo, stop_process, wait_for_health
from tests.exposition import series_names
from tests.prometheus import Prometheus, start_prometheus

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SHARED_VARIABLES = {
    "environment": "label_values(synthetic_exporter_build_info, environment)",
    "suite": 'label_values(synthetic_suite_success{environment=~"$environment"}, suite)',
}
# Prometheus' own per-target series, not the agent's.
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds"})
# Metrics that dashboards may query before the agent exports them: none now. A name put here
# must still be queried, and its panels are excused from showing data in the slow test.
PENDING: frozenset[str] = frozenset()
# Panels that legitimately show no data while every check passes: (dashboard uid, title).
MAY_BE_EMPTY = {
    # Lists tests whose last result is failed, error or timeout: none on a healthy system.
    ("synthetic-overview", "Failing tests"),
    # Count tests whose last result is failed (or flaky): none on a healthy system.
    ("synthetic-overview", "Failing tests over time"),
    ("synthetic-overview", "Flaky tests over time"),
    # The demo serves plain HTTP, so no certificate is seen
    # (tests/http/test_instrumentation.py covers TLS).
    ("synthetic-http-cdn", "TLS certificate expiry"),
}
# Values for the variables when the slow test runs the queries (Grafana's would be similar).
VALUES = {
    "environment": "e2e",
    "suite": ".*",
    "target": ".*",
    "instance": ".*",
    "__rate_interval": "30s",
    "__range": "60s",
    "__interval": "15s",
    "window": "1m",
    "agent_url": "http://agent",
}
PROMQL_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})


# Reading the generated dashboards -----------------------------------------------------------


@cache
def generated() -> dict[str, str]:
    """Return the dashboards' JSON text by file name, as grafana/dashboards.py renders it."""
    return dashboards.render()


def boards() -> Iterator[dict[str, Any]]:
    """Yield every dashboard as parsed JSON."""
    for content in generated().values():
        yield json.loads(content)


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every panel, rows and the panels inside collapsed rows included."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def targets(board: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield every (panel, query target) of a dashboard."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel, target


def variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return a dashboard's template variables by name."""
    return {v["name"]: v for v in board["templating"]["list"]}


def variable_selector(variable: dict[str, Any]) -> str:
    """Return the series selector of a ``label_values(selector, label)`` variable query."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"])
    assert match, f"not a label_values() query: {variable['query']}"
    return match.group(1)


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery durations
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", expr):
        is_function = expr[match.end() :].lstrip().startswith("(")
        if not is_function and match.group().lower() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def queried_names() -> dict[str, set[str]]:
    """Return, for every query and variable query of every dashboard, the metrics it names."""
    found: dict[str, set[str]] = {}
    for board in boards():
        for panel, target in targets(board):
            found[f"{board['uid']} / {panel['title']}: {target['expr']}"] = metric_names(
                target["expr"]
            )
        for name, variable in variables(board).items():
            if variable["type"] == "query":
                found[f"{board['uid']} / ${name}"] = metric_names(variable_selector(variable))
    return found


# Fast checks -----------------------------------------------------------------------------------


def test_committed_json_is_what_the_generator_writes() -> None:
    committed = sorted(path.name for path in dashboards.OUTPUT.glob("*.json"))
    assert committed == sorted(generated()), "run `make dashboards`"
    for name, content in generated().items():
        on_disk = (dashboards.OUTPUT / name).read_text(encoding="utf-8")
        assert on_disk == content, f"{name} is stale: run `make dashboards`"


def test_generator_writes_into_a_directory(tmp_path: Path) -> None:
    written = dashboards.write(tmp_path)
    assert [path.name for path in written] == list(generated())
    assert all(path.read_text(encoding="utf-8") == generated()[path.name] for path in written)


def test_dashboards_have_stable_uids_and_the_tag() -> None:
    for name, content in generated().items():
        board = json.loads(content)
        assert board["uid"] == name.removesuffix(".json")
        assert dashboards.TAG in board["tags"]
        assert board["title"].startswith("Synthetic monitoring: ")
        assert content == json.dumps(board, sort_keys=True, indent=2) + "\n"


def test_every_dashboard_has_the_shared_variables() -> None:
    for board in boards():
        found = variables(board)
        assert found["datasource"]["type"] == "datasource"
        assert found["datasource"]["query"] == "prometheus"
        for name, query in SHARED_VARIABLES.items():
            assert found[name]["type"] == "query"
            assert found[name]["query"] == query
            assert found[name]["datasource"] == DATASOURCE
        assert found["suite"]["multi"] is True
        assert found["suite"]["includeAll"] is True
        assert found["suite"]["allValue"] == ".*"
    target = variables(json.loads(generated()["synthetic-http-cdn.json"]))["target"]
    assert target["multi"] is True
    assert target["allValue"] == ".*"


def test_variables_used_in_queries_are_defined() -> None:
    builtin = {"__rate_interval", "__range", "__interval"}
    for board in boards():
        defined = set(variables(board)) | builtin
        for panel, target in targets(board):
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= defined, (board["uid"], panel["title"])


def test_panels_have_unique_ids_titles_and_the_datasource_variable() -> None:
    for board in boards():
        found = list(panels(board))
        ids = [panel["id"] for panel in found]
        assert len(ids) == len(set(ids)), board["uid"]
        assert all(isinstance(i, int) and i > 0 for i in ids), board["uid"]
        titles = [panel["title"] for panel in found]
        assert len(titles) == len(set(titles)), board["uid"]
        for panel in found:
            assert panel["datasource"] == DATASOURCE, (board["uid"], panel["title"])
            position = panel["gridPos"]
            assert position["x"] + position["w"] <= 24, (board["uid"], panel["title"])
        for panel, target in targets(board):
            assert target["datasource"] == DATASOURCE, (board["uid"], panel["title"])
            assert target["refId"], (board["uid"], panel["title"])


def test_every_queried_metric_is_exported_by_the_agent() -> None:
    allowed = series_names(detailed=False) | PROMETHEUS_OWN | PENDING
    for where, names in queried_names().items():
        assert names, f"no metric found in {where}"
        assert names <= allowed, f"{where}: not exported: {sorted(names - allowed)}"


def test_pending_names_are_queried() -> None:
    queried = set().union(*queried_names().values())
    assert queried >= PENDING, f"no dashboard queries {sorted(PENDING - queried)}"


def test_docs_describe_every_panel() -> None:
    docs = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    for board in boards():
        assert f"`{board['uid']}`" in docs
        for panel in panels(board):
            if panel["type"] != "row":
                assert f"**{panel['title']}**" in docs, (board["uid"], panel["title"])


# The histograms the agent exports at default settings, which carry exemplars.
EXEMPLAR_HISTOGRAMS = re.compile(r"synthetic_http_request_duration_seconds_bucket")


def test_duration_queries_show_exemplars() -> None:
    shown = []
    for board in boards():
        for panel, target in targets(board):
            if EXEMPLAR_HISTOGRAMS.search(target["expr"]):
                assert target.get("exemplar") is True, (board["uid"], panel["title"])
                shown.append(panel["title"])
            else:
                assert not target.get("exemplar"), (board["uid"], panel["title"])
    assert {"Request phases p95 by target", "Time to first byte (p50, p95)"} <= set(shown)


def test_duration_panels_without_exemplars_link_to_the_agent() -> None:
    (overview,) = [b for b in boards() if b["uid"] == "synthetic-overview"]
    links = {
        panel["title"]: [
            link["url"]
            for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", [])
        ]
        for panel in overview["panels"]
        if panel["type"] != "row"
    }
    test_page = "${agent_url}/tests/${__field.labels.suite}/${__field.labels.test}"
    for title in ("Test duration p50", "Test duration p95", "All tests"):
        assert links[title] == [test_page], title
    assert links["Suite duration (p50, p95)"] == [
        "${agent_url}/api/v1/runs?suite=${__field.labels.suite}"
    ]


def agent_exemplar_labels() -> set[str]:
    """Return the label names of the exemplars the agent writes, from a real render."""
    from dataclasses import replace

    from prometheus_client import CollectorRegistry
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from synthetic_exporter.core.results import Outcome, RequestRecord
    from synthetic_exporter.exporter.metrics import Metrics
    from tests.factories import make_suite

    metrics = Metrics(CollectorRegistry(), {}, version="0")
    result = make_suite("checkout", ("login", Outcome.PASSED))
    request = RequestRecord(
        target="api",
        method="GET",
        path="/",
        status=200,
        duration_seconds=0.01,
        phases={"processing": 0.01},
    )
    traced = replace(
        result.tests[0], trace_id="4bf92f3577b34da6a3ce929d0e0e4736", requests=(request,)
    )
    metrics.suite_finished(replace(result, tests=(traced,)))
    body, _ = metrics.render("application/openmetrics-text; version=1.0.0")
    return {
        name
        for family in text_string_to_metric_families(body.decode())  # type: ignore[no-untyped-call]
        for sample in family.samples
        if sample.exemplar is not None
        for name in sample.exemplar.labels
    }


def test_datasource_example_links_every_exemplar_label() -> None:
    import yaml

    example = yaml.safe_load((ROOT / "grafana" / "datasource-example.yaml").read_text())
    (source,) = example["datasources"]
    assert source["type"] == "prometheus"
    links = {d["name"]: d for d in source["jsonData"]["exemplarTraceIdDestinations"]}
    assert set(links) == agent_exemplar_labels() == {"run_id", "trace_id"}
    # Grafana expands $VAR in provisioning files: its own variables are written $${...}.
    assert links["run_id"]["url"] == f"{dashboards.AGENT_URL}/runs/$${{__value.raw}}"
    assert links["trace_id"]["datasourceUid"]


# Every query against the real agent ------------------------------------------------------------


def substitute(expr: str) -> str:
    """Replace ``$name`` and ``${name}`` with the test's variable values."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: VALUES[m.group(1)], expr)


def run(prometheus: Prometheus, expr: str, instant: bool) -> list[Any]:
    """Run a query as Grafana would (instant, or over the last minute); return its result."""
    now = time.time()
    if instant:
        params: dict[str, str | float] = {"query": expr, "time": now}
        path = "/api/v1/query"
    else:
        params = {"query": expr, "start": now - 60, "end": now, "step": 1}
        path = "/api/v1/query_range"
    r = httpx.get(f"{prometheus.url}{path}", params=params, timeout=10)
    assert r.status_code == 200, f"{expr}: {r.text}"
    body = r.json()
    assert body["status"] == "success", f"{expr}: {body}"
    return list(body["data"]["result"])


# Series the live demo agent cannot have: it serves plain HTTP, so no certificate is seen.
NOT_IN_DEMO = frozenset({"synthetic_tls_cert_expiry_timestamp_seconds"})


def assert_live_exposition_has_every_name(agent_url: str) -> None:
    """Check the names that dashboards and alert rules read against the live /metrics."""
    from tests.test_alerts import _names_in, rules

    text = httpx.get(f"{agent_url}/metrics", timeout=10).text
    live = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    used = set().union(*queried_names().values())
    used |= {n for rule in rules() for n in _names_in(rule["expr"]) if n.startswith("synthetic_")}
    missing = {n for n in used if ":" not in n} - live - PROMETHEUS_OWN - NOT_IN_DEMO
    assert not missing, f"not in the live exposition: {sorted(missing)}"


@pytest.mark.slow
def test_every_panel_query_returns_data_from_the_agent(tmp_path: Path) -> None:
    # The demo command: the agent with every example suite, each with its target (API, CDN
    # edge, origin, S3), so that the HTTP, CDN and storage panels have data too.
    agent = start_demo(tmp_path / "state", SYNTHETIC_ENVIRONMENT="e2e")
    prometheus: Prometheus | None = None
    try:
        prometheus = start_prometheus(tmp_path / "prometheus", [agent.url.removeprefix("http://")])
        wait_for_health(agent.url, 200)
        # Enough samples for rate() over $__rate_interval, with every suite having run.
        prometheus.wait_for("changes(synthetic_suite_last_run_timestamp_seconds[30s]) > 0", 60)
        prometheus.wait_for('count(synthetic_suite_success{environment="e2e"}) >= 5')
        empty = []
        for board in boards():
            for name, variable in variables(board).items():
                if variable["type"] != "query":
                    continue
                selector = variable_selector(variable)
                label = variable["query"].rsplit(",", 1)[1].strip(" )")
                rows = run(prometheus, substitute(f"count by ({label}) ({selector})"), True)
                if not rows and not metric_names(selector) & PENDING:
                    empty.append(f"{board['uid']} / ${name}")
            for panel, target in targets(board):
                rows = run(prometheus, substitute(target["expr"]), bool(target.get("instant")))
                allowed = (board["uid"], panel["title"]) in MAY_BE_EMPTY
                if not rows and not allowed and not metric_names(target["expr"]) & PENDING:
                    empty.append(f"{board['uid']} / {panel['title']}: {target['expr']}")
        assert not empty, "queries without data:\n" + "\n".join(empty)
        assert_live_exposition_has_every_name(agent.url)
    finally:
        if prometheus is not None:
            prometheus.stop()
        stop_process(agent.process)
