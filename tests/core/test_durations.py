"""Tests of duration parsing and formatting."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from synthetic_exporter.core.durations import (
    Duration,
    PositiveDuration,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("1.5", 1.5),
        (" 30 ", 30.0),
        ("250ms", 0.25),
        ("90s", 90.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1d2h3m4s5ms", 93784.005),
        ("0s", 0.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["", " ", "abc", "-5", "-1s", "5x", "1m1h", "1s1s", "5 m", "1.2.3s", "ms", "inf", "nan"],
)
def test_parse_duration_rejects_bad_strings(value: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5, True, False, None, float("inf"), float("nan"), [1]])
def test_parse_duration_rejects_other_values(value: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_parse_duration_message_explains() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("abc")
    assert str(info.value) == (
        "invalid duration 'abc': use seconds or a string like '90s', '5m', '1h30m'"
    )
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(-3)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (300, "5m"),
        (90, "1m30s"),
        (0.25, "250ms"),
        (1.5, "1s500ms"),
        (5400, "1h30m"),
        (86400, "1d"),
        (-90, "-1m30s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.0, 0.001, 0.25, 1.5, 59.999, 90.0, 3600.0, 93784.005])
def test_format_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


class _Model(BaseModel):
    every: Duration = 1.0
    timeout: PositiveDuration = 1.0


def test_pydantic_annotations() -> None:
    model = _Model.model_validate({"every": "1h30m", "timeout": "250ms"})
    assert model.every == 5400.0
    assert model.timeout == 0.25
    assert _Model.model_validate({"every": 0}).every == 0.0
    with pytest.raises(ValidationError, match="invalid duration 'abc'"):
        _Model.model_validate({"every": "abc"})
    with pytest.raises(ValidationError, match="must be greater than 0"):
        _Model.model_validate({"timeout": "0s"})
