"""The status pages in Debian's Chromium (Playwright), against a real agent and demo API.

A fault makes the demo API refuse sign-ups: the page must lead with that failure, reach the
run's waterfall in one click, update itself without reloading, fit a phone and log no errors.
Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import (
    ROOT,
    Server,
    demo_api_server,
    start_agent,
    stop_process,
    wait_for_health,
)

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FAILING = "t-signup.create_customer"
ROW = f'[id="{FAILING}"]'  # an id with a dot: an attribute selector
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An agent running every example suite each second, while sign-ups fail with 503."""
    with demo_api_server() as demo_api:
        agent = start_agent(
            ROOT / "checks",
            tmp_path_factory.mktemp("agent") / "state",
            demo_api,
            SYNTHETIC_INTERVAL="1s",
            SYNTHETIC_ENVIRONMENT="staging",
        )
        try:
            wait_for_health(agent.url, 200)
            fault = {"path": "/customers", "method": "POST", "status": 503}
            assert httpx.post(f"{demo_api}/admin/faults", json=fault).status_code == 201
            wait_for_health(agent.url, 503)
            yield agent
        finally:
            stop_process(agent.process)


def watch_errors(page: Page) -> list[str]:
    """Collect console errors and uncaught exceptions of a page."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_outage_leads_the_page_and_one_click_reaches_the_waterfall(
    browser: Browser, outage: Server
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    errors = watch_errors(page)
    page.goto(f"{outage.url}/")
    assert page.title() == "synthetic-exporter: fail"

    first = page.locator("article.test").first
    assert first.get_attribute("id") == FAILING
    assert "assert 503 == 201" in first.locator(".message").inner_text()
    assert "since" in first.locator(".stats").inner_text()
    skipped = page.locator("#s-signup .dependent summary").all_inner_texts()
    assert [text.split()[1] for text in skipped] == ["browser_dashboard", "invoices", "payments"]
    shot(page, "status-outage.png")

    # Live update: new runs arrive as bars, the uptime moves, and the page is never reloaded.
    page.evaluate("window.liveMarker = 'kept'")
    last_bar = first.locator(".bar").last.get_attribute("href")
    uptime = first.locator(".uptime-day").inner_text()
    page.wait_for_function(
        """([id, bar, uptime]) => {
            const row = document.getElementById(id);
            const bars = row.querySelectorAll('.bar');
            return bars.length > 0 && bars[bars.length - 1].getAttribute('href') !== bar
                && row.querySelector('.uptime-day').textContent !== uptime;
        }""",
        arg=[FAILING, last_bar, uptime],
    )
    assert page.evaluate("window.liveMarker") == "kept"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1

    # One click on the failing test: its latest run, scrolled to the test, with the waterfall.
    page.locator(f"article{ROW} a.name").click()
    page.wait_for_url("**/runs/*#" + FAILING)
    test = page.locator(f"section{ROW}")
    assert "assert 503 == 201" in test.locator(".message").inner_text()
    rows = test.locator(".wf-row")
    assert rows.count() >= 1
    assert rows.first.locator(".status").inner_text() == "503"
    assert rows.first.locator("rect").count() >= 1
    assert "POST default/customers" in rows.first.locator(".wf-label").inner_text()
    shot(page, "run-page.png")
    assert errors == []


def test_pages_fit_a_phone_and_follow_the_dark_theme(browser: Browser, outage: Server) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, color_scheme="dark"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = watch_errors(page)
    page.goto(f"{outage.url}/")
    assert no_horizontal_scroll(page)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 20, 23)"  # the dark theme's --bg
    shot(page, "status-phone-dark.png")
    run_url = page.locator(f"article{ROW} a.name").get_attribute("href")
    page.goto(f"{outage.url}{run_url}")
    assert no_horizontal_scroll(page)
    shot(page, "run-page-phone-dark.png")
    page.goto(f"{outage.url}/tests/signup/create_customer")
    assert no_horizontal_scroll(page)
    assert page.locator("table.runs tbody tr").count() >= 1
    shot(page, "test-page-phone-dark.png")
    context.close()
    assert errors == []


def test_pages_work_without_javascript(browser: Browser, outage: Server) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{outage.url}/")
    assert page.locator("article.test").first.get_attribute("id") == FAILING
    assert "reload the page" in page.content()
    context.close()


FRAGMENT_FETCHES = """() => performance.getEntriesByType('resource')
    .filter((entry) => entry.name.includes('fragment=1')).length"""
# A function, not an expression: the pages' CSP forbids eval, which Playwright uses for those.
MORE_FETCHES_THAN = """(n) => performance.getEntriesByType('resource')
    .filter((entry) => entry.name.includes('fragment=1')).length > n"""


def test_live_updates_pause_while_the_tab_is_hidden(browser: Browser, outage: Server) -> None:
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = watch_errors(page)
    page.goto(f"{outage.url}/")
    page.wait_for_function(MORE_FETCHES_THAN, arg=0)  # live: within about 5 s
    # Hide the tab as a browser does (document.hidden, then a visibilitychange event).
    page.evaluate(
        """() => {
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    hidden_at = page.evaluate(FRAGMENT_FETCHES)
    page.wait_for_timeout(6_000)  # more than one 5 s period
    assert page.evaluate(FRAGMENT_FETCHES) == hidden_at
    page.evaluate(
        """() => {
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.wait_for_function(MORE_FETCHES_THAN, arg=hidden_at, timeout=2_000)  # at once
    assert errors == []
