"""Tests of logging configuration and redaction."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from loguru import logger

from synthetic_exporter.core.logs import configure_logging, redact


@pytest.fixture(autouse=True)
def _restore_loguru() -> Iterator[None]:
    """Leave loguru without sinks after each test."""
    yield
    logger.remove()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_with_extra_fields() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    logger.bind(suite="login", test="test_ok").info("passed {n}", n=1)
    logger.debug("hidden")
    logger.warning("second")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "passed 1"
    assert {k: first[k] for k in ("suite", "test", "n", "level")} == {
        "suite": "login",
        "test": "test_ok",
        "n": 1,
        "level": "INFO",
    }
    assert first["time"].startswith("20")
    assert second["message"] == "second"
    assert "suite" not in second


def test_text_contains_message_and_extra() -> None:
    stream = io.StringIO()
    configure_logging("text", "DEBUG", stream)
    logger.bind(suite="login", note="{braces} <red>").debug("started")
    logger.info("plain")
    text = stream.getvalue()
    first, second = text.splitlines()
    assert "DEBUG" in first
    assert "started" in first
    assert "suite=login note={braces} <red>" in first
    assert "plain" in second
    assert "=" not in second
    assert "\x1b[" not in text  # no colours when not a terminal


def test_json_includes_exception_summary() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    assert json.loads(stream.getvalue().splitlines()[0])["exception"] == "RuntimeError: boom"


def test_text_includes_exception() -> None:
    stream = io.StringIO()
    configure_logging("text", "INFO", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    assert "RuntimeError: boom" in stream.getvalue()


def test_auto_picks_json_unless_terminal() -> None:
    stream = io.StringIO()
    configure_logging("auto", "INFO", stream)
    logger.info("hello")
    assert json.loads(stream.getvalue())["message"] == "hello"
    terminal = _Terminal()
    configure_logging("auto", "INFO", terminal)
    logger.info("hello")
    assert "hello" in terminal.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(terminal.getvalue())
    assert stream.getvalue().count("\n") == 1  # the first sink was removed


def test_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="invalid log format 'xml'"):
        configure_logging("xml", "INFO", io.StringIO())


def test_redact() -> None:
    text = "token=abcd1234 key=abcd1234x short=abc"
    assert redact(text, ["abcd1234", "abcd1234x", "abc", ""]) == "token=*** key=*** short=abc"
    assert redact("nothing here", []) == "nothing here"
