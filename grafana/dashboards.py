"""Grafana dashboards for synthetic-exporter, built with grafana-foundation-sdk (Grafana 11.6).

Three dashboards, written to ``grafana/dashboards/`` as JSON with sorted keys so that diffs stay
small: the suites' status (``synthetic-overview``), HTTP, CDN, TLS and storage measurements
(``synthetic-http-cdn``) and the agent's own health (``synthetic-agent``). Regenerate them with
``make dashboards`` (``python -m grafana.dashboards``); a test checks that the committed JSON is
what this module writes. docs/dashboards.md describes every panel.

Queries of the agent's series select ``$environment`` and, where the series has a ``suite``
label, ``$suite``; Prometheus' own series and the process metrics, which have no ``environment``,
select the job and ``$instance`` (the agents of ``$environment``). The knobs (job selector,
failure results, cache hit statuses, TLS thresholds) are the constants below.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, text, timeseries
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    ScaleDistributionConfig,
    StackingConfig,
    TableSortByFieldState,
    VizLegendOptions,
)
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.text import TextMode

__all__ = ["DASHBOARDS", "OUTPUT", "main", "render", "write"]

OUTPUT = Path(__file__).resolve().parent / "dashboards"
TAG = "synthetic-exporter"
# Prometheus' own series (up, scrape_duration_seconds) and the process_ metrics carry no
# environment label: they are selected by job and by $instance, the agents of $environment.
# The same job selector as the alerts (alerts/config.yaml) and the Helm chart's ServiceMonitor.
JOB_SELECTOR = 'job="synthetic-exporter"'
FAILED = "failed|error|timeout"
CACHE_HITS = "Hit|RefreshHit"
TLS_WARNING_DAYS = 30
TLS_CRITICAL_DAYS = 14
# Default of the overview's Agent URL variable (kubectl port-forward to the agent's port).
AGENT_URL = "http://localhost:9479"
EXEMPLAR_NOTE = (
    "Exemplars need Prometheus' exemplar storage and the data source's exemplar links "
    "(docs/dashboards.md)."
)

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
ENV = 'environment=~"$environment"'
SUITE = f'{ENV}, suite=~"$suite"'
TARGET = f'{ENV}, target=~"$target"'
HTTP = f'{SUITE}, target=~"$target"'
AGENT = f'{ENV}, instance=~"$instance"'
PROCESS = f'{JOB_SELECTOR}, instance=~"$instance"'

RESULT_COLOURS = {
    "passed": "green",
    "flaky": "yellow",
    "skipped": "blue",
    "failed": "red",
    "error": "dark-red",
    "timeout": "orange",
}


# Helpers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Built(Builder[model.Panel]):
    """A panel that is already built, to hand to the dashboard builder."""

    panel: model.Panel

    def build(self) -> model.Panel:
        """Return the panel."""
        return self.panel


@dataclass(frozen=True)
class Row:
    """A titled row of panels; the panels' widths should add up to 24 per line."""

    title: str
    panels: Sequence[Builder[model.Panel]]


def query(
    expr: str, legend: str = "__auto", ref: str = "A", *, instant: bool = False
) -> prometheus.Dataquery:
    """Return a Prometheus query over the time range, or at its end if ``instant``."""
    q = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    return q.instant() if instant else q.range()


def with_exemplars(expr: str, legend: str = "__auto", ref: str = "A") -> prometheus.Dataquery:
    """Return a range query that also shows its series' exemplars (the agent's run ids).

    The data source's exemplar links (``exemplarTraceIdDestinations``, docs/dashboards.md) turn
    an exemplar's ``run_id`` into the agent's run page and its ``trace_id`` into a trace.
    """
    return query(expr, legend, ref).exemplar(True)


def row_query(expr: str, ref: str = "A") -> prometheus.Dataquery:
    """Return an instant query formatted as a table: one row per series, labels as columns."""
    return query(expr, ref=ref, instant=True).format(PromQueryFormat.TABLE)


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Return absolute thresholds; the first step's value is None (minus infinity)."""
    return (
        db.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value, colour) for value, colour in steps])
    )


def value_map(options: dict[str, tuple[str, str]]) -> model.ValueMap:
    """Map values to (text, colour)."""
    return model.ValueMap(
        {
            key: model.ValueMappingResult(text=label, color=colour, index=i)
            for i, (key, (label, colour)) in enumerate(options.items())
        }
    )


PASS_FAIL = value_map({"0": ("FAIL", "red"), "1": ("PASS", "green")})
UP_DOWN = value_map({"0": ("DOWN", "red"), "1": ("UP", "green")})
RESULTS = value_map({result: (result, colour) for result, colour in RESULT_COLOURS.items()})


def series(
    title: str, description: str, unit: str, *targets: prometheus.Dataquery
) -> timeseries.Panel:
    """Return a time series panel with a table legend (last and max)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .span(12)
        .height(8)
        .fill_opacity(10)
        .legend(
            VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    for target in targets:
        panel.with_target(target)
    return panel


def bars(
    title: str, description: str, unit: str, *targets: prometheus.Dataquery
) -> timeseries.Panel:
    """Return a stacked bar chart over time (counts per interval)."""
    return (
        series(title, description, unit, *targets)
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .stacking(StackingConfig().mode(common.StackingMode.NORMAL))
    )


def single(
    title: str,
    description: str,
    unit: str,
    target: prometheus.Dataquery,
    *,
    span: int = 6,
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    mappings: Sequence[model.ValueMapping] = (),
    text_mode: common.BigValueTextMode = common.BigValueTextMode.VALUE_AND_NAME,
    colour_mode: common.BigValueColorMode = common.BigValueColorMode.BACKGROUND,
) -> stat.Panel:
    """Return a stat panel showing each series' last value, coloured by ``steps``."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .span(span)
        .height(5)
        .with_target(target)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(colour_mode)
        .text_mode(text_mode)
        .thresholds(thresholds(*steps))
        .mappings(list(mappings))
    )


def tabular(
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    columns: dict[str, str],
    *,
    units: dict[str, str] | None = None,
    span: int = 24,
    height: int = 8,
) -> table.Panel:
    """Return a table of instant queries, merged into one row per label set.

    ``columns`` maps the fields to show (labels, or ``Value #<refId>``) to their titles, in
    order; every other field is dropped. ``units`` maps fields to units.
    """
    # Overrides match the field's display name, which is its title after "organize".
    result = columns.get("result", "result")
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .span(span)
        .height(height)
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            model.DataTransformerConfig(
                id_val="filterFieldsByName", options={"include": {"names": list(columns)}}
            )
        )
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={
                    "indexByName": {name: i for i, name in enumerate(columns)},
                    "renameByName": columns,
                },
            )
        )
        .override_by_name(
            result,
            [
                model.DynamicConfigValue("mappings", [RESULTS]),
                model.DynamicConfigValue("custom.cellOptions", {"type": "color-text"}),
            ],
        )
    )
    first = next(iter(columns.values()))
    panel.sort_by([TableSortByFieldState().display_name(first)])
    for target in targets:
        panel.with_target(target)
    for name, unit in (units or {}).items():
        panel.override_by_name(columns[name], [model.DynamicConfigValue("unit", unit)])
    return panel


def note(title: str, content: str) -> text.Panel:
    """Return a markdown text panel."""
    return text.Panel().title(title).mode(TextMode.MARKDOWN).content(content)


def over_time(quantile: float, metric: str, selector: str) -> str:
    """Return the ``quantile`` of a last-value gauge's samples over the ``$window`` variable.

    One sample per scrape: exact over the values the scrapes saw, when the scrape interval is
    no longer than the checks' interval (docs/metrics.md, "Series per check").
    """
    return f"quantile_over_time({quantile}, {metric}{{{selector}}}[$window])"


def agent_link(title: str, path: str) -> db.DashboardLink:
    """Return a data link to a page of the agent (the ``$agent_url`` variable) in a new tab."""
    return (
        db.DashboardLink(title)
        .type(model.DashboardLinkType.LINK)
        .url(f"${{agent_url}}{path}")
        .target_blank(True)
    )


WINDOW = (
    db.CustomVariable("window")
    .label("Window")
    .description("The window of the quantiles of last durations (quantile_over_time).")
    .values("30m,1h,6h,1d")
    .current(model.VariableOption(text="1h", value="1h"))
)


def p(quantile: float, by: str, metric: str, selector: str, extra: str = "") -> str:
    """Return ``histogram_quantile`` over the rate of ``metric``'s buckets, summed by ``by``."""
    matchers = f"{selector}, {extra}" if extra else selector
    return (
        f"histogram_quantile({quantile}, sum by (le, {by}) "
        f"(rate({metric}_bucket{{{matchers}}}[$__rate_interval])))"
    )


def variables(*extra: db.QueryVariable) -> list[Builder[model.VariableModel]]:
    """Return the variables every dashboard has (datasource, environment, suite), then ``extra``."""
    return [
        db.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        label_variable(
            "environment",
            "Environment",
            "label_values(synthetic_exporter_build_info, environment)",
            multi=False,
        ),
        label_variable(
            "suite", "Suite", f"label_values(synthetic_suite_success{{{ENV}}}, suite)"
        ).all_value(".*"),
        *extra,
    ]


def label_variable(
    name: str, label: str, label_values: str, *, multi: bool = True
) -> db.QueryVariable:
    """Return a variable of a label's values, refreshed with the time range.

    A ``multi`` variable takes several values and offers All.
    """
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(label_values)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )


def build_dashboard(
    uid: str,
    title: str,
    description: str,
    variable_list: list[Builder[model.VariableModel]],
    rows: Sequence[Row],
) -> db.Dashboard:
    """Return a dashboard of ``rows``; panels get ids in order and the ``$datasource``."""
    dashboard = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .time("now-6h", "now")
        .refresh("1m")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(variable_list)
        .link(
            db.DashboardLink("Synthetic monitoring")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    panel_id = 0
    for row in rows:
        panel_id += 1
        dashboard.with_row(db.Row(row.title).id(panel_id).datasource(DATASOURCE))
        for builder in row.panels:
            panel_id += 1
            panel = builder.build()
            panel.id_val = panel_id
            panel.datasource = DATASOURCE
            dashboard.with_panel(_Built(panel))
    return dashboard


# Overview ---------------------------------------------------------------------------------------

FAILURE_MESSAGES = """\
Failure messages are not metrics (they would be unbounded labels). Read them from the agent:

- [`/healthz`](${agent_url}/healthz): the failed tests as `suite/test` with their messages, \
skipped suites and why, and whether results are stale;
- [`/api/v1/results`](${agent_url}/api/v1/results): the latest result of every suite and test;
- [status page](${agent_url}/), and the agent's logs (one JSON line per failure).

Set the **Agent URL** variable above to an address of the agent that your browser reaches, e.g. \
after `kubectl port-forward svc/synthetic-exporter 9479`.
"""


def overview() -> db.Dashboard:
    """Return the status dashboard: suites, tests, failures, durations, results over time."""
    success = f"synthetic_suite_success{{{SUITE}}}"
    suite_results = f"synthetic_suite_result{{{SUITE}"  # the caller closes the braces
    test_page = agent_link(
        "Test history on the agent", "/tests/${__field.labels.suite}/${__field.labels.test}"
    )
    suite_runs_page = agent_link("Runs on the agent", "/api/v1/runs?suite=${__field.labels.suite}")
    status = [
        single(
            "Suite status",
            "Each suite's last run: PASS (passed or flaky) or FAIL (failed, error, timeout or "
            "skipped; the Suites table tells which).",
            "none",
            query(success, "{{suite}}", instant=True),
            span=12,
            steps=((None, "red"), (1, "green")),
            mappings=[PASS_FAIL],
        ),
        single(
            "Tests failing now",
            "Tests whose last result is failed, error or timeout; skips are not counted.",
            "none",
            query(
                f'count(synthetic_test_result{{{SUITE}, result=~"{FAILED}"}} == 1) or vector(0)',
                "failing",
                instant=True,
            ),
            span=4,
            steps=((None, "green"), (1, "red")),
            text_mode=common.BigValueTextMode.VALUE,
        ),
        single(
            "Skipped suites",
            "Suites whose last run was skipped, e.g. because a dependency failed.",
            "none",
            query(
                f'count(synthetic_suite_result{{{SUITE}, result="skipped"}} == 1) or vector(0)',
                "skipped",
                instant=True,
            ),
            span=4,
            steps=((None, "green"), (1, "orange")),
            text_mode=common.BigValueTextMode.VALUE,
        ),
        single(
            "Oldest last run",
            "Seconds since the least recent suite result (orange after 15 minutes, red after "
            "30); results older than two intervals make /healthz fail as stale.",
            "s",
            query(
                f"max(time() - synthetic_suite_last_run_timestamp_seconds{{{SUITE}}})",
                "age",
                instant=True,
            ),
            span=4,
            steps=((None, "green"), (900, "orange"), (1800, "red")),
            text_mode=common.BigValueTextMode.VALUE,
        ),
        statetimeline.Panel()
        .title("Suite status over time")
        .description("PASS or FAIL of each suite's last run, over time.")
        .span(24)
        .height(6)
        .with_target(query(success, "{{suite}}"))
        .mappings([PASS_FAIL])
        .thresholds(thresholds((None, "red"), (1, "green")))
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True),
        tabular(
            "Suites",
            "Each suite's last result, its duration, how long ago it ended, and its interval.",
            [
                row_query(f"synthetic_suite_result{{{SUITE}}} == 1", "A"),
                row_query(f"synthetic_suite_last_duration_seconds{{{SUITE}}}", "B"),
                row_query(f"time() - synthetic_suite_last_run_timestamp_seconds{{{SUITE}}}", "C"),
                row_query(f"synthetic_suite_interval_seconds{{{SUITE}}}", "D"),
            ],
            {
                "suite": "Suite",
                "result": "Result",
                "Value #B": "Last duration",
                "Value #C": "Last run age",
                "Value #D": "Interval",
            },
            units={"Value #B": "s", "Value #C": "s", "Value #D": "s"},
        ),
    ]
    tests = [
        tabular(
            "Failing tests",
            "Tests whose last result is failed, error or timeout; their messages are in /healthz.",
            [row_query(f'synthetic_test_result{{{SUITE}, result=~"{FAILED}"}} == 1')],
            {"suite": "Suite", "test": "Test", "result": "Result"},
            span=16,
        ).no_value("No failing tests"),
        note("Failure messages", FAILURE_MESSAGES).span(8).height(8),
        tabular(
            "All tests",
            "Each test's last result, its duration and how long ago it ended.",
            [
                row_query(f"synthetic_test_result{{{SUITE}}} == 1", "A"),
                row_query(f"synthetic_test_last_duration_seconds{{{SUITE}}}", "B"),
                row_query(f"time() - synthetic_test_last_run_timestamp_seconds{{{SUITE}}}", "C"),
            ],
            {
                "suite": "Suite",
                "test": "Test",
                "result": "Result",
                "Value #B": "Last duration",
                "Value #C": "Last run age",
            },
            units={"Value #B": "s", "Value #C": "s"},
            height=12,
        ).data_links([test_page]),
    ]
    suite_duration = "synthetic_suite_last_duration_seconds"
    test_duration = "synthetic_test_last_duration_seconds"
    durations = [
        series(
            "Suite duration (p50, p95)",
            "Whole suite runs, cleanups included, skipped runs left out: quantiles of the last "
            "durations over the $window window. A click on a line leads to the suite's runs on "
            "the agent.",
            "s",
            query(over_time(0.5, suite_duration, SUITE), "{{suite}} p50"),
            query(over_time(0.95, suite_duration, SUITE), "{{suite}} p95", "B"),
        ).data_links([suite_runs_page]),
        series(
            "Time since last run",
            "Seconds since each suite's last result; compare with its interval.",
            "s",
            query(f"time() - synthetic_suite_last_run_timestamp_seconds{{{SUITE}}}", "{{suite}}"),
        ),
        series(
            "Test duration p50",
            "Median duration of each test's last attempt, cleanups excluded, over the $window "
            "window. A click on a line leads to the test's runs, waterfalls and traces on the "
            "agent.",
            "s",
            query(over_time(0.5, test_duration, SUITE), "{{suite}}/{{test}}"),
        ).data_links([test_page]),
        series(
            "Test duration p95",
            "95th percentile duration of each test's last attempt, cleanups excluded, over the "
            "$window window. A click on a line leads to the test's runs on the agent.",
            "s",
            query(over_time(0.95, test_duration, SUITE), "{{suite}}/{{test}}"),
        ).data_links([test_page]),
    ]
    results = [
        bars(
            "Tests by last result",
            "How many tests were in each state (their last result), over time.",
            "short",
            query(f"count by (result) (synthetic_test_result{{{SUITE}}})", "{{result}}"),
        ).span(8),
        bars(
            "Failing tests over time",
            "Tests whose last result was failed, error or timeout, over time.",
            "short",
            query(
                f'count by (suite, test) (synthetic_test_result{{{SUITE}, result=~"{FAILED}"}})',
                "{{suite}}/{{test}}",
            ),
        ).span(8),
        bars(
            "Flaky tests over time",
            "Tests whose last result passed only after a retry, over time.",
            "short",
            query(
                f'count by (suite, test) (synthetic_test_result{{{SUITE}, result="flaky"}})',
                "{{suite}}/{{test}}",
            ),
        ).span(8),
        single(
            "Failure ratio over the time range",
            "Share of the time range each suite's last result was failed, error or timeout, "
            "skips left out (orange from 1%, red from 5%).",
            "percentunit",
            query(
                f'(sum by (suite) (count_over_time({suite_results}, result=~"{FAILED}"}}'
                f"[$__range])) or 0 * sum by (suite) (count_over_time({suite_results}"
                f"}}[$__range]))) / sum by (suite) (count_over_time({suite_results}, "
                f'result!="skipped"}}[$__range]))',
                "{{suite}}",
                instant=True,
            ),
            span=24,
            steps=((None, "green"), (0.01, "orange"), (0.05, "red")),
        ),
    ]
    agent_url = (
        db.TextBoxVariable("agent_url")
        .label("Agent URL")
        .description("Base URL of the agent, for the links to /healthz and /api/v1/results.")
        .default_value(AGENT_URL)
        .current(model.VariableOption(text=AGENT_URL, value=AGENT_URL))
    )
    return build_dashboard(
        "synthetic-overview",
        "Synthetic monitoring: overview",
        "Status of every suite and test, failures, durations and results over time.",
        [*variables(), WINDOW, agent_url],
        [
            Row("Status", status),
            Row("Tests", tests),
            Row("Durations", durations),
            Row("Results over time", results),
        ],
    )


# HTTP and CDN -----------------------------------------------------------------------------------


def http_cdn() -> db.Dashboard:
    """Return the HTTP dashboard: latency by phase, cache, codes, edge locations, TLS, storage."""
    duration = "synthetic_http_request_duration_seconds"
    responses = "synthetic_http_responses_total"
    edge = f"synthetic_http_edge_responses_total{{{TARGET}"  # the caller closes the braces
    latency = [
        series(
            "Request phases p95 by target",
            "95th percentile of each phase (resolve, connect, tls, processing, transfer) per "
            "target: compare the CloudFront and S3-origin targets. Exemplars (dots) lead to the "
            f"run's page on the agent and to the run's trace. {EXEMPLAR_NOTE}",
            "s",
            with_exemplars(p(0.95, "target, phase", duration, TARGET), "{{target}} {{phase}}"),
        ).span(24),
        series(
            "Phases by test (last run)",
            "Where each test's last run spent its time in requests, per target and phase "
            "(summed over the run's requests to that target): one series per test, target and "
            "phase, from the last-value gauge synthetic_http_last_phase_seconds.",
            "s",
            query(
                f"synthetic_http_last_phase_seconds{{{HTTP}}}",
                "{{suite}}/{{test}} {{target}} {{phase}}",
            ),
        )
        .span(24)
        .stacking(StackingConfig().mode(common.StackingMode.NORMAL)),
        series(
            "Time to first byte (p50, p95)",
            "The processing phase (request sent to first response byte) per target; with "
            "exemplars.",
            "s",
            with_exemplars(
                p(0.5, "target", duration, TARGET, 'phase="processing"'), "{{target}} p50"
            ),
            with_exemplars(
                p(0.95, "target", duration, TARGET, 'phase="processing"'), "{{target}} p95", "B"
            ),
        ),
        series(
            "Transfer time p95",
            "The transfer phase (first to last response byte) per target; with exemplars.",
            "s",
            with_exemplars(p(0.95, "target", duration, TARGET, 'phase="transfer"'), "{{target}}"),
        ),
    ]
    cache = [
        series(
            "Cache hit ratio",
            f"Share of CDN responses served from cache ({CACHE_HITS}) per target; responses "
            'without a CDN cache status (cache="none") are left out.',
            "percentunit",
            query(
                f'sum by (target) (rate({responses}{{{TARGET}, cache=~"{CACHE_HITS}"}}'
                "[$__rate_interval]))"
                f' / sum by (target) (rate({responses}{{{TARGET}, cache!="none"}}'
                "[$__rate_interval]))",
                "{{target}}",
            ),
        ).span(8),
        bars(
            "Responses by cache status",
            "Responses per second by target and CDN cache status.",
            "reqps",
            query(
                f"sum by (target, cache) (rate({responses}{{{TARGET}}}[$__rate_interval]))",
                "{{target}} {{cache}}",
            ),
        ).span(8),
        bars(
            "Responses by status code",
            "Responses per second by target and HTTP status code.",
            "reqps",
            query(
                f"sum by (target, code) (rate({responses}{{{TARGET}}}[$__rate_interval]))",
                "{{target}} {{code}}",
            ),
        ).span(8),
    ]
    edges = [
        bars(
            "Responses by edge location",
            "CDN responses per second by edge location (point of presence).",
            "reqps",
            query(f"sum by (pop) (rate({edge}}}[$__rate_interval]))", "{{pop}}"),
        ),
        tabular(
            "Edge locations over the time range",
            "Responses and cache hit ratio per edge location over the time range.",
            [
                row_query(f"sum by (pop) (increase({edge}}}[$__range]))", "A"),
                row_query(
                    f'sum by (pop) (increase({edge}, cache=~"{CACHE_HITS}"}}[$__range]))'
                    f" / sum by (pop) (increase({edge}}}[$__range]))",
                    "B",
                ),
            ],
            {"pop": "Edge location", "Value #A": "Responses", "Value #B": "Hit ratio"},
            units={"Value #A": "short", "Value #B": "percentunit"},
            span=12,
        ),
    ]
    hygiene = [
        single(
            "TLS certificate expiry",
            f"Days until each target's certificate expires (orange under {TLS_WARNING_DAYS}, "
            f"red under {TLS_CRITICAL_DAYS}).",
            "d",
            query(
                f"(synthetic_tls_cert_expiry_timestamp_seconds{{{TARGET}}} - time()) / 86400",
                "{{target}}",
                instant=True,
            ),
            span=8,
            steps=((None, "red"), (TLS_CRITICAL_DAYS, "orange"), (TLS_WARNING_DAYS, "green")),
        ).height(8),
        series(
            "Delete markers",
            "Delete markers in the checks' versioned bucket; growth means test data is only "
            "soft-deleted.",
            "short",
            query(f"synthetic_storage_delete_markers{{{HTTP}}}", "{{suite}} {{target}}"),
        ).span(8),
        series(
            "Object versions",
            "Object versions in the checks' versioned bucket; should stay flat.",
            "short",
            query(f"synthetic_storage_object_versions{{{HTTP}}}", "{{suite}} {{target}}"),
        ).span(8),
    ]
    target = label_variable(
        "target", "Target", f"label_values(synthetic_http_responses_total{{{ENV}}}, target)"
    ).all_value(".*")
    return build_dashboard(
        "synthetic-http-cdn",
        "Synthetic monitoring: HTTP and CDN",
        "HTTP latency by phase (CloudFront versus S3 origin), CDN cache, status codes, edge "
        "locations, TLS expiry and storage hygiene, as the checks measured them.",
        variables(target),
        [
            Row("Latency: CloudFront versus S3 origin", latency),
            Row("Responses and cache", cache),
            Row("Edge locations", edges),
            Row("TLS and storage hygiene", hygiene),
            Row("Browser", browser_panels()),
        ],
    )


def browser_panels() -> list[Builder[model.Panel]]:
    """Return the browser checks' panels: Web Vitals, navigation, page weight, asset cache."""
    assets = "synthetic_browser_asset_responses_total"
    return [
        series(
            "Web Vitals by test (last run)",
            "First contentful paint (fcp), largest contentful paint (lcp) and total blocking "
            "time (tbt) of the last page each browser test's last run visited, from "
            "synthetic_browser_last_vital_seconds: a slow hero image moves lcp.",
            "s",
            query(
                f"synthetic_browser_last_vital_seconds{{{SUITE}}}",
                "{{suite}}/{{test}} {{vital}}",
            ),
        ),
        series(
            "Cumulative layout shift (last run)",
            "How much the last page of each browser test's last run moved while loading "
            "(synthetic_browser_last_cls; Google calls under 0.1 good, over 0.25 poor).",
            "none",
            query(f"synthetic_browser_last_cls{{{SUITE}}}", "{{suite}}/{{test}}"),
        ),
        series(
            "Navigation phases by test (last run)",
            "Where the last page of each browser test's last run spent its time, stacked: dns, "
            "connect, tls, ttfb, download, dom_content_loaded, load "
            "(synthetic_browser_last_phase_seconds; a phase that did not happen has no series).",
            "s",
            query(
                f"synthetic_browser_last_phase_seconds{{{SUITE}}}",
                "{{suite}}/{{test}} {{phase}}",
            ),
        )
        .span(24)
        .stacking(StackingConfig().mode(common.StackingMode.NORMAL)),
        series(
            "Page requests (last run)",
            "Responses (document, assets, XHR) of the pages each browser test's last run "
            "visited, summed (synthetic_browser_last_requests).",
            "short",
            query(f"synthetic_browser_last_requests{{{SUITE}}}", "{{suite}}/{{test}}"),
        ),
        series(
            "Page weight (last run)",
            "Bytes transferred by the pages each browser test's last run visited, summed "
            "(synthetic_browser_last_transfer_bytes).",
            "bytes",
            query(f"synthetic_browser_last_transfer_bytes{{{SUITE}}}", "{{suite}}/{{test}}"),
        ),
        series(
            "Browser asset hit ratio by target and edge",
            f"Share of the browser pages' responses served from the CDN cache ({CACHE_HITS}) "
            "per target and edge location; responses without a CDN cache status "
            '(cache="none") are left out. An edge that stops caching drops here.',
            "percentunit",
            query(
                f'sum by (target, pop) (rate({assets}{{{TARGET}, cache=~"{CACHE_HITS}"}}'
                "[$__rate_interval]))"
                f' / sum by (target, pop) (rate({assets}{{{TARGET}, cache!="none"}}'
                "[$__rate_interval]))",
                "{{target}} {{pop}}",
            ),
        ),
        bars(
            "Browser responses by cache status",
            "The browser pages' responses per second by target and CDN cache status "
            "(other: third-party hosts).",
            "reqps",
            query(
                f"sum by (target, cache) (rate({assets}{{{TARGET}}}[$__rate_interval]))",
                "{{target}} {{cache}}",
            ),
        ),
    ]


# Agent ------------------------------------------------------------------------------------------


def agent() -> db.Dashboard:
    """Return the agent's own health: scrapes, schedule lag, overruns, clean-ups, process."""
    lag = "synthetic_exporter_schedule_lag_seconds"
    blocked = "synthetic_exporter_event_loop_blocked_seconds_total"
    health = [
        single(
            "Up",
            "Whether Prometheus' last scrape of the agent succeeded.",
            "none",
            query(f"up{{{PROCESS}}}", "{{instance}}", instant=True),
            span=4,
            steps=((None, "red"), (1, "green")),
            mappings=[UP_DOWN],
        ),
        single(
            "Version",
            "The agent's version, per instance (synthetic_exporter_build_info).",
            "none",
            query(
                f"synthetic_exporter_build_info{{{AGENT}}}",
                "{{instance}} {{version}}",
                instant=True,
            ),
            text_mode=common.BigValueTextMode.NAME,
            colour_mode=common.BigValueColorMode.NONE,
        ),
        single(
            "Suites loaded",
            "Suites loaded from the checks path.",
            "none",
            query(f"synthetic_exporter_suites_loaded{{{AGENT}}}", "{{instance}}", instant=True),
            span=4,
            steps=((None, "red"), (1, "green")),
        ),
        single(
            "Load errors",
            "Check files or suites that failed to load; `synthetic-exporter validate` names them.",
            "none",
            query(f"synthetic_exporter_load_errors{{{AGENT}}}", "{{instance}}", instant=True),
            span=4,
            steps=((None, "green"), (1, "red")),
        ),
        single(
            "Uptime",
            "Time since the agent process started.",
            "s",
            query(
                f"time() - process_start_time_seconds{{{PROCESS}}}", "{{instance}}", instant=True
            ),
            colour_mode=common.BigValueColorMode.NONE,
        ),
    ]
    scheduling = [
        series(
            "Schedule lag (p50, p99)",
            "How late runs start versus their schedule: a busy or blocked event loop.",
            "s",
            query(p(0.5, "instance", lag, AGENT), "{{instance}} p50"),
            query(p(0.99, "instance", lag, AGENT), "{{instance}} p99", "B"),
        ).span(6),
        series(
            "Event loop blocked (s per 5m)",
            "Seconds the event loop was held by blocking check code (blocks over 1s), per 5 "
            "minutes: every check, scrape and probe waited meanwhile. The agent's ERROR log line "
            "names the check (location).",
            "s",
            query(f"increase({blocked}{{{AGENT}}}[5m])", "{{instance}}"),
        ).span(6),
        bars(
            "Overruns",
            "Run slots dropped because the suite's previous run was still going.",
            "short",
            query(
                f"sum by (suite) (increase(synthetic_suite_overruns_total{{{SUITE}}}"
                "[$__rate_interval]))",
                "{{suite}}",
            ),
        ).span(6),
        series(
            "Scrape duration",
            "How long Prometheus takes to scrape the agent's /metrics.",
            "s",
            query(f"scrape_duration_seconds{{{PROCESS}}}", "{{instance}}"),
        ).span(6),
    ]
    cleanups = [
        series(
            "Pending clean-ups",
            "Test data left behind, waiting for a retried clean-up by the ledger's sweep.",
            "short",
            query(f"synthetic_cleanup_pending{{{SUITE}}}", "{{suite}}"),
        ),
        series(
            "Clean-up failures",
            "Cleanups and janitor calls that raised or timed out, per second.",
            "ops",
            query(
                f"sum by (suite) (rate(synthetic_cleanup_failures_total{{{SUITE}}}"
                "[$__rate_interval]))",
                "{{suite}}",
            ),
        ),
    ]
    process = [
        series(
            "CPU",
            "CPU seconds used per second (100% is one core).",
            "percentunit",
            query(
                f"rate(process_cpu_seconds_total{{{PROCESS}}}[$__rate_interval])", "{{instance}}"
            ),
        ).span(8),
        series(
            "Resident memory",
            "Resident set size of the agent process.",
            "bytes",
            query(f"process_resident_memory_bytes{{{PROCESS}}}", "{{instance}}"),
        ).span(8),
        series(
            "Open file descriptors",
            "File descriptors the agent process holds open (sockets included), against its "
            "limit (dashed; the hard nofile limit, which the agent raises its soft limit to). "
            "Logarithmic scale. Near the limit, new connections fail: Too many open files.",
            "short",
            query(f"process_open_fds{{{PROCESS}}}", "{{instance}} open"),
            query(f"process_max_fds{{{PROCESS}}}", "{{instance}} max", "B"),
        )
        .span(8)
        .scale_distribution(ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10))
        .override_by_query(
            "B",
            [
                model.DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
                model.DynamicConfigValue("custom.fillOpacity", 0),
            ],
        ),
    ]
    # No allValue: "All" means the instances of $environment, not every scraped instance.
    instance = label_variable(
        "instance", "Instance", f"label_values(synthetic_exporter_build_info{{{ENV}}}, instance)"
    )
    return build_dashboard(
        "synthetic-agent",
        "Synthetic monitoring: agent",
        "The agent's own health: scrapes, schedule lag, event-loop blocks, overruns, clean-ups, "
        "CPU, memory and file descriptors.",
        variables(instance),
        [
            Row("Agent", health),
            Row("Scheduling and scrapes", scheduling),
            Row("Clean-up ledger", cleanups),
            Row("Process", process),
        ],
    )


# Output -----------------------------------------------------------------------------------------

DASHBOARDS = {
    "synthetic-overview.json": overview,
    "synthetic-http-cdn.json": http_cdn,
    "synthetic-agent.json": agent,
}


def render() -> dict[str, str]:
    """Return every dashboard's JSON text (sorted keys, indent 2, final newline) by file name."""
    return {
        name: json.dumps(build().build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
        for name, build in DASHBOARDS.items()
    }


def write(directory: Path = OUTPUT) -> list[Path]:
    """Write every dashboard into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in render().items():
        path = directory / name
        path.write_text(content, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: Sequence[str] = ()) -> int:
    """Write the dashboards (into the directory given, else ``grafana/dashboards``)."""
    directory = Path(argv[0]) if argv else OUTPUT
    for path in write(directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
