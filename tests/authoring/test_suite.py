"""Suite and test definitions."""

from __future__ import annotations

import pytest

from synthetic_exporter import JanitorContext, Orphan, Resource, Suite, T
from synthetic_exporter.authoring.suite import DefinitionError


def test_durations_accept_seconds_and_strings() -> None:
    suite = Suite("a", interval="5m", timeout=90, test_timeout="1m30s")
    assert (suite.interval, suite.timeout, suite.test_timeout) == (300.0, 90.0, 90.0)
    assert Suite("b").interval is None


def test_tests_keep_definition_order_and_options() -> None:
    suite = Suite("ordered", retries=1)

    @suite.test
    async def second(t: T) -> None: ...

    @suite.test(timeout="10s", retries=3)
    def first(t: T) -> None: ...

    assert [(t.name, t.timeout, t.retries, t.is_async) for t in suite.tests] == [
        ("second", None, None, True),
        ("first", 10.0, 3, False),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "has space"}, "invalid suite name 'has space'"),
        ({"name": "a", "interval": "0s"}, "interval must be greater than zero"),
        ({"name": "a", "retries": -1}, "retries must be a whole number >= 0"),
        ({"name": "a", "depends_on": ["a"]}, "cannot depend on itself"),
        ({"name": "a", "depends_on": "b"}, "not one string"),
    ],
)
def test_bad_definitions_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        Suite(**kwargs)  # type: ignore[arg-type]


def test_duplicate_test_names_are_rejected() -> None:
    suite = Suite("dupes")

    @suite.test
    async def same(t: T) -> None: ...

    with pytest.raises(DefinitionError, match="already has a test named 'same'"):
        suite.test(same)


def test_suite_remembers_where_it_was_defined() -> None:
    suite = Suite("here")
    assert suite.file == __file__
    assert suite.line > 0


def test_an_orphan_listing_belongs_to_a_kind_with_a_janitor() -> None:
    suite = Suite("listed")
    with pytest.raises(DefinitionError, match=r"declare @suite\.janitor\('customer'\) before"):
        suite.orphans("customer")

    @suite.janitor("customer")
    async def delete(j: JanitorContext, r: Resource) -> None: ...

    @suite.orphans("customer")
    async def customers(j: JanitorContext) -> list[Orphan]:
        return []

    assert suite.orphan_finders == {"customer": customers}
    with pytest.raises(DefinitionError, match="invalid resource kind name"):
        suite.orphans("bad kind")
