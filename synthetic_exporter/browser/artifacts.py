"""A failed page's screenshot and Playwright trace, with secret values masked in the trace."""

from __future__ import annotations

import base64
import contextlib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

SCREENSHOT = "screenshot.png"
TRACE = "trace.zip"
SAVE_TIMEOUT = 5.0
"""Seconds the screenshot, and then the trace, may take to be saved."""


def redact_zip(path: Path, redact: Callable[[str], str]) -> None:
    """Rewrite a trace's text members with ``redact`` applied (header values, bodies, URLs).

    A trace records the requests' headers: a target's default headers may hold a secret.
    """
    cleaned = path.with_suffix(".tmp")
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(cleaned, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in source.infolist():
            data = source.read(info)
            with contextlib.suppress(UnicodeDecodeError):
                text = data.decode("utf-8")
                masked = redact(text)
                if masked != text:
                    data = masked.encode("utf-8")
            out.writestr(info, data)
    cleaned.replace(path)


async def save(
    page: Page,
    context: BrowserContext,
    directory: Path,
    redact: Callable[[str], str],
) -> None:
    """Save the page's screenshot and the context's trace into ``directory`` (bounded)."""
    await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
    with anyio.move_on_after(SAVE_TIMEOUT), contextlib.suppress(Exception):
        # Over CDP: Playwright's own screenshot waits for a pending navigation to commit.
        session = await context.new_cdp_session(page)
        shot = await session.send("Page.captureScreenshot", {"format": "png"})
        await anyio.Path(directory / SCREENSHOT).write_bytes(base64.b64decode(shot["data"]))
    trace = directory / TRACE
    with anyio.move_on_after(SAVE_TIMEOUT), contextlib.suppress(Exception):
        await context.tracing.stop(path=trace)
    if await anyio.Path(trace).exists():
        try:
            await anyio.to_thread.run_sync(redact_zip, trace, redact)
        except (OSError, zipfile.BadZipFile):
            trace.unlink(missing_ok=True)  # better none than one that may hold a secret
