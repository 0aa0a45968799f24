"""Sharding: every suite on exactly one shard, dependency groups kept together."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthetic_exporter import Suite
from synthetic_exporter.core.settings import Settings, Shard, parse_shard
from synthetic_exporter.engine.graph import dependency_groups
from synthetic_exporter.engine.shard import suites_for_shard


def make_suites() -> dict[str, Suite]:
    """Return 40 suites: chains of three (a dependency group each) and loners."""
    suites: dict[str, Suite] = {}
    for i in range(10):
        suites[f"signup{i}"] = Suite(f"signup{i}")
        suites[f"invoices{i}"] = Suite(f"invoices{i}", depends_on=[f"signup{i}"])
        suites[f"payments{i}"] = Suite(f"payments{i}", depends_on=[f"invoices{i}"])
        suites[f"cdn{i}"] = Suite(f"cdn{i}")
    return suites


@pytest.mark.parametrize("total", [1, 2, 3, 4, 7])
def test_every_suite_on_exactly_one_shard_with_its_dependencies(total: int) -> None:
    suites = make_suites()
    shards = [suites_for_shard(suites, i, total) for i in range(total)]
    placed = [name for shard in shards for name in shard]
    assert sorted(placed) == sorted(suites)
    groups = dependency_groups(suites)
    for shard in shards:
        for name in shard:
            together = {n for n, g in groups.items() if g == groups[name]}
            assert together <= set(shard)
    if total > 1:
        assert sum(1 for shard in shards if shard) > 1


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", (0, 1)), ("2/4", (2, 4)), (" 3/4 ", (3, 4))]
)
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    shard = parse_shard(text)
    assert (shard.index, shard.total) == expected
    assert str(shard) == text.strip()


def test_settings_parse_the_shard_once_into_a_value(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, shard="1/3")
    assert settings.shard == Shard(1, 3)


@pytest.mark.parametrize("text", ["4/4", "1/0", "a/b", "1", "-1/2"])
def test_bad_shards_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid shard"):
        parse_shard(text)
