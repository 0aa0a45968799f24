"""``t.page()`` in Debian's Chromium against a real page under uvicorn: measurements, headers,
isolation, failure messages, artifacts and the time limit."""

from __future__ import annotations

import socket
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from playwright.async_api import expect

from synthetic_exporter import Suite, T
from synthetic_exporter.core.results import Outcome
from synthetic_exporter.core.settings import Settings, TargetSettings
from tests.browser.site import SLOW_ASSET_SECONDS, Site, serve_site
from tests.engine_helpers import by_name, run_suites

pytestmark = pytest.mark.slow
SettingsFor = Callable[..., Settings]
SECRET = "s3cret-session"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve_site() as running:
        yield running


async def test_a_page_records_phases_vitals_requests_and_cdn_assets(
    site: Site, settings_for: SettingsFor, tmp_path: Path
) -> None:
    suite = Suite("shop")

    @suite.test
    async def home(t: T) -> None:
        async with t.step("open the shop"), t.page() as page:
            response = await page.goto("/?utm=x")
            assert response is not None
            assert response.status == 200
            await expect(page.locator("#greeting")).to_have_text("Hello")

    recorder = await run_suites(settings_for(site.url, environment="staging"), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.PASSED, result.message
    assert [s.name for s in result.steps] == ["open the shop"]
    assert result.artifacts == ()
    assert not (tmp_path / "state" / "artifacts").exists() or not any(
        (tmp_path / "state" / "artifacts").rglob("*.zip")
    )
    (page,) = result.pages
    assert (page.target, page.path, page.status) == ("default", "/", 200)
    assert {"ttfb", "download", "dom_content_loaded", "load"} <= set(page.phases)
    # The stylesheet that takes SLOW_ASSET_SECONDS blocks the first paint and the load event.
    assert page.vitals["fcp"] >= SLOW_ASSET_SECONDS
    assert page.vitals["lcp"] >= page.vitals["fcp"]
    assert page.phases["dom_content_loaded"] >= SLOW_ASSET_SECONDS * 0.9
    assert page.cls == 0.0
    assert page.requests == 5  # document, two stylesheets, a script, an image
    assert page.transfer_bytes > 500
    counts = {(a.target, a.pop, a.cache): a.responses for a in page.assets}
    assert counts == {("default", "LHR", "Hit"): 3, ("default", "LHR", "Miss"): 1}
    # The marker header reached the server on every request of the page.
    assert site.markers["/static/hero.svg"][-1] == "staging"
    assert site.markers["/"][-1] == "staging"


async def test_marker_goes_everywhere_and_headers_to_their_target_only(
    site: Site, settings_for: SettingsFor
) -> None:
    suite = Suite("origins")

    with serve_site() as cdn, serve_site() as third:

        @suite.test
        async def mixed(t: T) -> None:
            async with t.page() as page:
                await page.goto(f"/mixed?cdn={cdn.url}&third={third.url}")

        targets = {
            "default": TargetSettings(base_url=site.url, headers={"X-Api-Key": "key-1234"}),
            "cdn": TargetSettings(base_url=cdn.url),
        }
        recorder = await run_suites(settings_for(targets=targets, environment="staging"), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.PASSED, result.message
    assert (site.markers["/mixed"][-1], site.api_keys["/mixed"][-1]) == ("staging", "key-1234")
    # Another target's origin gets the marker (and that target's HEADERS, none here) ...
    assert (cdn.markers["/static/hero.svg"], cdn.api_keys["/static/hero.svg"]) == (
        ["staging"],
        [""],
    )
    # ... a third party the marker only, never a target's HEADERS.
    assert (third.markers["/static/hero.svg"], third.api_keys["/static/hero.svg"]) == (
        ["staging"],
        [""],
    )
    (page,) = result.pages
    counts = {(a.target, a.pop, a.cache): a.responses for a in page.assets}
    assert counts == {("cdn", "LHR", "Hit"): 1, ("other", "LHR", "Hit"): 1}


FIRST_PAINT = "performance.getEntriesByName('first-contentful-paint').length > 0"


async def test_each_document_of_a_page_is_a_record_and_blocking_time_counts(
    site: Site, settings_for: SettingsFor
) -> None:
    suite = Suite("visits")

    @suite.test
    async def two_pages(t: T) -> None:
        async with t.page() as page:
            await page.goto("/")
            # The load event may come before the first paint: a document left then has no FCP.
            await page.wait_for_function(FIRST_PAINT)
            await page.goto("/busy")
            await page.wait_for_function("window.busyDone === true")

    recorder = await run_suites(settings_for(site.url), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.PASSED, result.message
    first, second = result.pages
    assert (first.path, second.path) == ("/", "/busy")
    assert "fcp" in first.vitals
    assert first.requests == 5
    assert second.requests == 1
    assert second.vitals["tbt"] >= 0.2  # a 300 ms task after the first paint


async def test_expect_and_assert_failures_keep_their_message_redacted_with_artifacts(
    site: Site, settings_for: SettingsFor, tmp_path: Path
) -> None:
    suite = Suite("account", stop_on_failure=False)

    @suite.test
    async def signed_in(t: T) -> None:
        async with t.page() as page:
            await page.goto("/login")
            await page.goto("/whoami")
            await expect(page.locator("#cookie")).to_have_text("nobody", timeout=500)

    @suite.test
    async def plain_assert(t: T) -> None:
        async with t.page() as page:
            await page.goto("/")
            title = await page.title()
            assert title == "Cart", f"title is {title!r}"

    headers = {"X-Api-Key": "header-value-42"}
    settings = settings_for(
        secrets={"session": SECRET},
        targets={"default": TargetSettings(base_url=site.url, headers=headers)},
    )
    recorder = await run_suites(settings, [suite])
    results = by_name(recorder.tests)
    expected = results["account/signed_in"]
    assert expected.outcome is Outcome.FAILED
    assert "Locator expected to have text 'nobody'" in expected.message
    assert "Actual value: session=***" in expected.message
    assert SECRET not in expected.message
    assert expected.artifacts == ("screenshot.png", "trace.zip")
    directory = tmp_path / "state" / "artifacts" / recorder.suites[0].run_id / "signed_in"
    assert (directory / "screenshot.png").read_bytes().startswith(b"\x89PNG")
    with zipfile.ZipFile(directory / "trace.zip") as trace:
        names = trace.namelist()
        text = b"".join(trace.read(n) for n in names)
    assert any(n.endswith(".trace") for n in names)
    assert b"/whoami" in text
    assert SECRET.encode() not in text  # the cookie header and the page's text, masked
    assert b"x-api-key" in text.lower()
    assert b"header-value-42" not in text  # a target's header values too, as in messages
    asserted = results["account/plain_assert"]
    assert asserted.outcome is Outcome.FAILED
    assert asserted.message.startswith("title is 'Shop'\nassert 'Shop' == 'Cart'")


async def test_a_retry_that_passes_drops_the_first_attempts_files(
    site: Site, settings_for: SettingsFor, tmp_path: Path
) -> None:
    suite = Suite("retried")
    attempts: list[int] = []

    @suite.test(retries=1)
    async def second_time_lucky(t: T) -> None:
        attempts.append(1)
        async with t.page() as page:
            await page.goto("/")
            assert len(attempts) == 2, "first attempt fails"

    recorder = await run_suites(settings_for(site.url), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.FLAKY
    assert result.artifacts == ()
    assert len(result.pages) == 1  # the last attempt's
    assert not (tmp_path / "state" / "artifacts" / recorder.suites[0].run_id).exists()


async def test_tests_share_no_cookies(site: Site, settings_for: SettingsFor) -> None:
    suite = Suite("isolation")

    @suite.test
    async def signs_in(t: T) -> None:
        async with t.page() as page:
            await page.goto("/login")
            await page.goto("/whoami")
            await expect(page.locator("#cookie")).to_have_text(f"session={SECRET}")

    @suite.test
    async def comes_later(t: T) -> None:
        async with t.page() as page:
            await page.goto("/whoami")
            await expect(page.locator("#cookie")).to_have_text("none")

    recorder = await run_suites(settings_for(site.url), [suite])
    assert [r.outcome for r in recorder.tests] == [Outcome.PASSED, Outcome.PASSED], [
        r.message for r in recorder.tests
    ]
    assert site.cookies["/whoami"][-2:] == [f"session={SECRET}", ""]


async def test_a_hanging_page_ends_as_the_test_timeout_and_its_context_closes(
    site: Site, settings_for: SettingsFor
) -> None:
    suite = Suite("slow", stop_on_failure=False)
    contexts: list[int] = []

    @suite.test
    async def starts_the_browser(t: T) -> None:
        async with t.page() as page:
            await page.goto("/")

    @suite.test(timeout=2)
    async def hangs(t: T) -> None:
        async with t.page() as page:
            await page.goto("/hang")

    @suite.test
    async def after(t: T) -> None:
        pool = t._harness.browser
        assert pool is not None
        contexts.append(pool.stats().open_contexts)

    started = anyio.current_time()
    recorder = await run_suites(settings_for(site.url), [suite])
    results = by_name(recorder.tests)
    hung = results["slow/hangs"]
    assert hung.outcome is Outcome.TIMEOUT
    assert hung.message == "test timed out after 2s"
    assert hung.artifacts == ("screenshot.png", "trace.zip")
    assert anyio.current_time() - started < 15
    assert contexts == [0]  # the hung page's context was closed


async def test_a_navigation_without_answer_is_a_record_with_its_error(
    site: Site, settings_for: SettingsFor
) -> None:
    suite = Suite("refused")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens there once the socket is closed

    @suite.test
    async def closed_port(t: T) -> None:
        async with t.page() as page:
            await page.goto(f"http://127.0.0.1:{closed}/shop?token=x")

    recorder = await run_suites(settings_for(site.url), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.ERROR
    assert "net::ERR_CONNECTION_REFUSED" in result.message
    (page,) = result.pages
    assert (page.target, page.path, page.status) == ("other", "/shop", None)
    assert page.error == "net::ERR_CONNECTION_REFUSED"


async def test_an_unknown_target_is_the_same_error_as_for_http(
    site: Site, settings_for: SettingsFor
) -> None:
    suite = Suite("targets")

    @suite.test
    async def elsewhere(t: T) -> None:
        async with t.page(target="cdn"):
            pass

    recorder = await run_suites(settings_for(site.url), [suite])
    (result,) = recorder.tests
    assert result.outcome is Outcome.ERROR
    assert "no target named 'cdn' (set SYNTHETIC_TARGETS__CDN__BASE_URL" in result.message
