"""End to end: a real agent runs browser checks (real Chromium) against a local site.

A failing browser check's run page links its screenshot (a real PNG) and trace (a real zip);
the metrics carry the browser families and the pool's figures.
"""

from __future__ import annotations

import io
import re
import struct
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.browser.site import serve_site
from tests.conftest import ROOT, start_agent, stop_process, write_checks

CHECKS = """
from synthetic_exporter import Suite, T

shop = Suite("shop", interval="1h")


@shop.test
async def home(t: T) -> None:
    async with t.page() as page:
        await page.goto("/")
        assert await page.text_content("#title") == "Shop"


@shop.test
async def greeting(t: T) -> None:
    async with t.page() as page:
        await page.goto("/")
        greeting = await page.text_content("#greeting")
        assert greeting == "Goodbye", f"greeting is {greeting!r}"
"""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored
TIMEOUT_MS = 20_000


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """Return the value of the first sample of ``name`` that has ``labels``."""
    for line in metrics.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def look_at_the_run_page(url: str) -> None:
    """Open the run page on a phone-sized screen: the screenshot loads, the page fits."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url, timeout=TIMEOUT_MS)
            image = page.locator(".artifacts img")
            image.scroll_into_view_if_needed(timeout=TIMEOUT_MS)
            page.wait_for_function(
                "() => document.querySelector('.artifacts img').complete", timeout=TIMEOUT_MS
            )
            assert image.evaluate("img => img.naturalWidth") > 100  # loaded, not blocked by CSP
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            assert page.locator("table.pages tbody tr").count() == 2  # one page per test
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / "run-page-browser-test.png", full_page=True)
            assert errors == []
        finally:
            browser.close()


def first_result(agent: str, seconds: float = 90) -> dict[str, Any]:
    """Wait (bounded) for the suite's first result; return it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        suites = httpx.get(f"{agent}/api/v1/results", timeout=10).json()["suites"]
        if suites:
            return dict(suites[0])
        time.sleep(0.3)
    raise AssertionError(f"no result within {seconds} s")


@pytest.mark.slow
def test_a_failing_browser_check_links_its_screenshot_and_trace(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"shop.py": CHECKS})
    with serve_site() as site:
        agent = start_agent(checks, tmp_path / "state", site.url)
        try:
            shop = first_result(agent.url)
            tests = {t["name"]: t for t in shop["tests"]}
            assert tests["home"]["outcome"] == "passed"
            assert tests["home"]["artifacts"] == []  # kept only when the test fails
            assert tests["home"]["pages"][0]["path"] == "/"
            failed = tests["greeting"]
            assert failed["outcome"] == "failed"
            assert "screenshot.png" in failed["artifacts"]

            html = httpx.get(f"{agent.url}/runs/{shop['run_id']}", timeout=10).text
            assert '<table class="pages">' in html
            img = re.search(r'<img src="(/runs/[^"]+/artifacts/greeting/screenshot\.png)"', html)
            assert img is not None, html
            shot = httpx.get(agent.url + img.group(1), timeout=10)
            assert shot.status_code == 200
            assert shot.headers["content-type"] == "image/png"
            assert shot.content.startswith(PNG_SIGNATURE)
            width, height = struct.unpack(">II", shot.content[16:24])  # IHDR
            assert width > 100
            assert height > 100
            if "trace.zip" in failed["artifacts"]:
                trace_url = f"/runs/{shop['run_id']}/artifacts/greeting/trace.zip"
                assert f'href="{trace_url}"' in html
                trace = httpx.get(agent.url + trace_url, timeout=10)
                assert trace.headers["content-disposition"].startswith("attachment")
                assert zipfile.ZipFile(io.BytesIO(trace.content)).namelist()

            metrics = httpx.get(f"{agent.url}/metrics", timeout=10).text
            home = {"suite": "shop", "test": "home"}
            lcp = sample(metrics, "synthetic_browser_last_vital_seconds", **home, vital="lcp")
            assert lcp is not None
            assert lcp > 0
            requests = sample(metrics, "synthetic_browser_last_requests", **home)
            assert requests is not None
            assert requests >= 5  # the page, two stylesheets, a script and an image
            hits = sample(
                metrics,
                "synthetic_browser_asset_responses_total",
                target="default",
                pop="LHR",
                cache="Hit",
            )
            assert hits is not None
            assert hits >= 2
            look_at_the_run_page(f"{agent.url}/runs/{shop['run_id']}")
            processes = sample(metrics, "synthetic_exporter_browser_processes")
            assert processes is not None
            assert processes >= 1
            assert sample(metrics, "synthetic_exporter_browser_contexts") == 0  # all closed
            assert sample(metrics, "synthetic_exporter_browser_restarts_total") == 0
        finally:
            stop_process(agent.process)
