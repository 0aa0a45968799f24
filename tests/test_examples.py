"""The example suites in ``checks/`` run by the real CLI against the demo API and moto's S3.

The demo API is a subprocess and S3 a moto server in a thread of this process, both on
127.0.0.1; ``run --once`` gets their URLs through ``SYNTHETIC_TARGETS__*`` like any agent.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthetic_exporter.demo.run import demo_env
from synthetic_exporter.demo.storage import create_versioned_bucket, s3_server
from tests.conftest import ROOT, CliRun, cli_env, run_cli, start_process, stop_process

pytestmark = pytest.mark.slow

CHECKS = ROOT / "checks"
SUITES = {"signup", "invoices", "payments", "cdn", "storage", "browser_dashboard"}
HERO = "/cdn/app/img/hero.svg"
Json = dict[str, Any]


@dataclass(frozen=True)
class Demo:
    api: str
    s3: str


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    """The demo API (a subprocess) and S3 (moto, in a thread) with the versioned demo bucket."""
    api = start_process(
        [sys.executable, "-m", "synthetic_exporter.demo", "--host", "127.0.0.1", "--port", "0"],
        "listening on ",
    )
    try:
        with s3_server("127.0.0.1", 0) as s3_url:
            create_versioned_bucket(s3_url)
            yield Demo(api.url, s3_url)
    finally:
        stop_process(api.process)


@pytest.fixture
def fault(demo: Demo) -> Iterator[Any]:
    """Inject faults into the demo API; all are removed after the test."""

    def inject(**body: object) -> None:
        r = httpx.post(f"{demo.api}/admin/faults", json=body, timeout=5)
        assert r.status_code == 201, r.text

    yield inject
    assert httpx.delete(f"{demo.api}/admin/faults", timeout=5).status_code == 204


def run_examples(
    demo: Demo, tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[CliRun, dict[str, Json]]:
    """``run --once --json`` over ``checks/``; return the run and each suite's results."""
    out = tmp_path / "results.json"
    env = cli_env(tmp_path / "state", None, **(demo_env(demo.api, demo.s3) if env is None else env))
    run = run_cli(["--checks", str(CHECKS), "run", "--once", "--json", str(out)], env, timeout=90)
    assert out.exists(), run.stdout + run.stderr
    suites = {s["suite"]: s for s in json.loads(out.read_text())["suites"]}
    return run, suites


def outcomes(suites: dict[str, Json]) -> dict[str, str]:
    return {name: suite["outcome"] for name, suite in suites.items()}


def requests_of(suite: Json, test: str) -> list[Json]:
    found: list[Json] = next(t["requests"] for t in suite["tests"] if t["name"] == test)
    return found


def test_every_example_suite_passes_against_the_demo(demo: Demo, tmp_path: Path) -> None:
    run, suites = run_examples(demo, tmp_path)
    assert outcomes(suites) == dict.fromkeys(SUITES, "passed"), run.stdout
    assert run.returncode == 0

    # The typed client's calls go through the instrumented client, token included.
    paid = requests_of(suites["payments"], "pay_by_card")
    assert ("POST", 201) in {(r["method"], r["status"]) for r in paid}
    assert {r["target"] for r in paid} == {"default"}
    assert any(r["path"].endswith("/payments") for r in paid)

    # Cache status and POP of every edge request; the second fetches are hits.
    edge = requests_of(suites["cdn"], "second_fetch_is_a_hit")
    assert {(r["target"], r["cache"]) for r in edge} == {("cdn", "Hit")}
    first = requests_of(suites["cdn"], "edge_matches_origin")
    assert {r["pop"] for r in first + edge} == {"LHR", "FRA"}

    hygiene = next(t for t in suites["storage"]["tests"] if t["name"] == "prefix_hygiene")
    assert hygiene["storage"] == [{"target": "s3", "object_versions": 0, "delete_markers": 0}]

    stats = httpx.get(f"{demo.api}/admin/stats", timeout=5).json()
    assert stats["synthetic_customers"] == 0  # every suite's janitor cleaned up


def pages_of(suite: Json) -> list[Json]:
    (test,) = suite["tests"]
    found: list[Json] = test["pages"]
    return found


def test_the_browser_check_opens_the_dashboard_through_the_edge(demo: Demo, tmp_path: Path) -> None:
    """Two pages (storefront, dashboard), measured, their assets from the edge's POPs."""
    run, suites = run_examples(demo, tmp_path)
    assert outcomes(suites)["browser_dashboard"] == "passed", run.stdout
    storefront, dashboard = pages_of(suites["browser_dashboard"])
    assert (storefront["path"], dashboard["path"]) == ("/cdn/app/", "/cdn/app/dashboard.html")
    assert dashboard["status"] == 200
    assert 0 < dashboard["vitals"]["fcp"] <= dashboard["vitals"]["lcp"] < 2.5
    assert dashboard["requests"] >= 8  # the page, its style, 2 scripts, 4 images, the API's JSON
    edge = {(a["target"], a["cache"]) for a in dashboard["assets"] if a["pop"] != "none"}
    assert edge <= {("cdn", "Hit"), ("cdn", "Miss"), ("cdn", "RefreshHit")}
    assert len({a["pop"] for a in dashboard["assets"] if a["pop"] != "none"}) == 2


def test_a_slow_hero_image_turns_the_browser_check_red(
    demo: Demo, fault: Any, tmp_path: Path
) -> None:
    """3 s more on the LCP image at the edge: past the 2.5 s budget, with screenshot and trace."""
    fault(path=HERO, delay_ms=3000)
    run, suites = run_examples(demo, tmp_path)
    assert run.returncode == 1, run.stdout
    assert outcomes(suites) == dict.fromkeys(SUITES, "passed") | {"browser_dashboard": "failed"}
    (test,) = suites["browser_dashboard"]["tests"]
    assert "largest contentful paint took" in test["message"], test["message"]
    assert "over its 2.5 s budget" in test["message"]
    assert pages_of(suites["browser_dashboard"])[-1]["vitals"]["lcp"] >= 3.0
    assert set(test["artifacts"]) >= {"screenshot.png"}


def test_edge_misses_show_in_the_browser_pages_not_as_a_failure(
    demo: Demo, fault: Any, tmp_path: Path
) -> None:
    fault(path="/edge-miss/app/")
    run, suites = run_examples(demo, tmp_path)
    assert outcomes(suites) == dict.fromkeys(SUITES, "passed"), run.stdout
    for page in pages_of(suites["browser_dashboard"]):
        edge = {a["cache"] for a in page["assets"] if a["pop"] != "none"}
        assert edge == {"Miss"}, page


def test_a_broken_edge_fails_only_the_suites_behind_it(
    demo: Demo, fault: Any, tmp_path: Path
) -> None:
    fault(path="/cdn", status=502)
    run, suites = run_examples(demo, tmp_path)
    assert run.returncode == 1
    behind_the_edge = {"cdn": "failed", "browser_dashboard": "failed"}
    assert outcomes(suites) == dict.fromkeys(SUITES, "passed") | behind_the_edge
    (browser,) = suites["browser_dashboard"]["tests"]
    assert browser["pages"][0]["status"] == 502, browser["pages"]
    failed = next(t for t in suites["cdn"]["tests"] if t["outcome"] == "failed")
    assert failed["name"] == "edge_matches_origin"
    assert "502" in failed["message"]
    assert "Error from cloudfront" in failed["message"]


def test_a_broken_signup_skips_the_suites_that_depend_on_it(
    demo: Demo, fault: Any, tmp_path: Path
) -> None:
    fault(path="/customers", method="POST", status=503)
    run, suites = run_examples(demo, tmp_path)
    assert run.returncode == 1
    assert outcomes(suites) == {
        "signup": "failed",
        "invoices": "skipped",
        "payments": "skipped",
        "cdn": "passed",
        "storage": "passed",
        "browser_dashboard": "skipped",
    }
    assert "signup" in suites["invoices"]["skip_reason"]
    assert "signup" in suites["payments"]["skip_reason"]


def test_suites_without_their_targets_are_skipped_not_failed(demo: Demo, tmp_path: Path) -> None:
    """An agent with only the default target does not page about a CDN or bucket it lacks."""
    run, suites = run_examples(demo, tmp_path, {"SYNTHETIC_TARGETS__DEFAULT__BASE_URL": demo.api})
    assert run.returncode == 0, run.stdout
    assert outcomes(suites) == dict.fromkeys(SUITES, "passed") | {
        "cdn": "skipped",
        "storage": "skipped",
        "browser_dashboard": "skipped",
    }
    skipped = ("cdn", "storage", "browser_dashboard")
    messages = {t["message"] for name in skipped for t in suites[name]["tests"]}
    assert messages == {
        "target(s) cdn, origin not configured (set SYNTHETIC_TARGETS__CDN__BASE_URL,"
        " SYNTHETIC_TARGETS__ORIGIN__BASE_URL)",
        "target(s) s3 not configured (set SYNTHETIC_TARGETS__S3__BASE_URL)",
        "target(s) cdn not configured (set SYNTHETIC_TARGETS__CDN__BASE_URL)",
    }


def test_without_the_typed_client_the_payments_suite_is_skipped(demo: Demo, tmp_path: Path) -> None:
    """The production image leaves out the ``demo`` extra (attrs): payments skips, nothing errors.

    A ``sitecustomize`` in the agent's interpreter makes ``attrs`` unimportable, as if it
    were not installed; the typed client (synthetic_exporter.demo.client) needs it.
    """
    no_attrs = tmp_path / "no_attrs"
    no_attrs.mkdir()
    (no_attrs / "sitecustomize.py").write_text('import sys\nsys.modules["attrs"] = None\n')
    env = demo_env(demo.api, demo.s3) | {"PYTHONPATH": str(no_attrs)}
    run, suites = run_examples(demo, tmp_path, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert outcomes(suites) == dict.fromkeys(SUITES, "passed") | {"payments": "skipped"}
    reasons = {t["message"] for t in suites["payments"]["tests"]}
    assert reasons == {
        "the typed demo client is not installed (no module 'attrs'):"
        " install synthetic-exporter[demo]"
    }
