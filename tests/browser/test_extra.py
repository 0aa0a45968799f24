"""Which tests need the [browser] extra, and the load-time error without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from synthetic_exporter import T
from synthetic_exporter.browser import playwright_installed, uses_page
from tests.conftest import ROOT, cli_env, write_checks


async def opens_a_page(t: T) -> None:
    async with t.page() as page:
        await page.goto("/")


async def opens_one_in_a_subtest(t: T) -> None:
    async def sub(t: T) -> None:
        async with t.page(target="shop"):
            pass

    await t.run("sub", sub)


async def calls_the_api(t: T) -> None:
    await t.http.get("/pages")  # a string "page" is no attribute


def test_a_test_reading_t_page_needs_the_browser() -> None:
    assert uses_page(opens_a_page)
    assert uses_page(opens_one_in_a_subtest)
    assert not uses_page(calls_the_api)
    assert playwright_installed()


BROWSER_CHECK = """
    from synthetic_exporter import Suite, T

    shop = Suite("shop")
    api = Suite("api")


    @shop.test
    async def home(t: T) -> None:
        async with t.page() as page:
            await page.goto("/")


    @api.test
    async def status(t: T) -> None:
        await t.http.get("/status")
"""


@pytest.mark.slow
def test_without_playwright_a_browser_check_fails_at_load_time(tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", {"shop.py": BROWSER_CHECK})
    # A real import failure: with sys.modules["playwright"] = None, `import playwright` raises
    # ModuleNotFoundError and importlib.util.find_spec("playwright") returns None.
    code = textwrap.dedent("""
        import sys
        sys.modules["playwright"] = None
        sys.argv = ["synthetic-exporter", *sys.argv[1:]]
        from synthetic_exporter.app.cli import entry_point
        entry_point()
    """)
    done = subprocess.run(
        [sys.executable, "-c", code, "--checks", str(checks), "validate"],
        capture_output=True,
        text=True,
        env={**cli_env(tmp_path / "state", "http://127.0.0.1:9"), "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "shop.py:8: test shop/home uses t.page() (a browser check)" in done.stderr
    assert "pip install 'synthetic-exporter[browser]'" in done.stderr
    assert "0 suites, 0 tests loaded, 1 error" in done.stdout
