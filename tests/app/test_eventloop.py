"""The event loop choice: uvloop where installed, asyncio's own otherwise."""

from __future__ import annotations

import importlib.util

import anyio
import pytest

from synthetic_exporter.app import eventloop


def test_uvloop_is_used_where_installed() -> None:
    assert eventloop.backend_options() == {"use_uvloop": True}  # a dependency on Linux


def test_asyncio_loop_when_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "uvloop" else real(name)
    )
    assert eventloop.backend_options() == {"use_uvloop": False}


def test_the_options_start_a_uvloop_loop() -> None:
    async def loop_module() -> str:
        import asyncio

        return type(asyncio.get_running_loop()).__module__

    assert anyio.run(loop_module, backend_options=eventloop.backend_options()).startswith("uvloop")
