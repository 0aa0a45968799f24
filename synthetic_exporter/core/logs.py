"""Logging setup (loguru); only the CLI entry point calls configure_logging."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

__all__ = ["LOG_FORMATS", "MIN_SECRET_LENGTH", "configure_logging", "redact"]

LOG_FORMATS = ("auto", "text", "json")
MIN_SECRET_LENGTH = 4
_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
    "<cyan>{name}</cyan> {message}"
)


def _text_format(record: Record) -> str:
    """Return the loguru format template of one record, with its extra fields as key=value."""
    template = _TEXT_FORMAT
    if record["extra"]:
        # Values are substituted by loguru, so braces or markup in them are not interpreted.
        fields = " ".join(f"{key}={value}" for key, value in record["extra"].items())
        record["extra"]["_fields"] = fields
        template += " <dim>{extra[_fields]}</dim>"
    return template + "\n{exception}"


def _json_line(record: Record) -> str:
    """Return the loguru format template of one compact JSON line (time, level, message, extras)."""
    data: dict[str, object] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
    }
    data.update({k: v for k, v in record["extra"].items() if not k.startswith("_")})
    if record["exception"] is not None and record["exception"].type is not None:
        data["exception"] = f"{record['exception'].type.__name__}: {record['exception'].value}"
    record["extra"]["_json"] = json.dumps(data, default=str)
    return "{extra[_json]}\n"


def configure_logging(log_format: str, level: str, stream: TextIO = sys.stderr) -> None:
    """Replace all loguru sinks with one sink writing text or JSON lines to stream."""
    fmt = log_format.lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"invalid log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    logger.remove()
    # diagnose=False: variable values in tracebacks could contain secrets.
    if fmt == "json":
        logger.add(stream, level=level.upper(), format=_json_line, backtrace=False, diagnose=False)
    else:
        logger.add(
            stream, level=level.upper(), format=_text_format, backtrace=False, diagnose=False
        )


class _ToStandardLogging(logging.Handler):
    """Hands loguru's records to Python's logging, under the module's logger name."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def log_to_standard_logging(level: str) -> None:
    """Replace all loguru sinks with Python's logging (under pytest: its log capture)."""
    logger.remove()
    logger.add(
        _ToStandardLogging(),
        level=level.upper(),
        format="{message}",
        backtrace=False,
        diagnose=False,
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value (of at least 4 characters) in text with '***'."""
    # Longest first, so a secret containing another one is replaced whole.
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, "***")
    return text
