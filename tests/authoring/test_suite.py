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


async def _no_args() -> None: ...


async def _one_arg(x: object) -> None: ...


async def _two_args(x: object, y: object) -> None: ...


async def _keyword_only(t: object, *, extra: object) -> None: ...


async def _optional_extra(t: object, extra: object = None, *rest: object) -> None: ...


async def _star_args(*args: object) -> None: ...


@pytest.mark.parametrize("func", [_no_args, _two_args, _keyword_only])
def test_a_test_that_cannot_take_t_is_refused_with_its_file_and_line(func: object) -> None:
    suite = Suite("arity")
    code = func.__code__  # type: ignore[attr-defined]
    where = f"{code.co_filename}:{code.co_firstlineno}"
    message = f"test '{code.co_name}' at {where} must take one argument, the test context `t`"
    with pytest.raises(DefinitionError) as caught:
        suite.test(func)  # type: ignore[call-overload]
    assert str(caught.value) == message
    assert suite.tests == []


@pytest.mark.parametrize("func", [_one_arg, _optional_extra, _star_args])
def test_a_test_that_can_take_t_is_accepted(func: object) -> None:
    suite = Suite("arity")
    suite.test(func)  # type: ignore[call-overload]
    assert [t.func for t in suite.tests] == [func]


def test_janitors_take_j_and_r_and_orphan_listings_take_j() -> None:
    suite = Suite("cleaning")
    with pytest.raises(DefinitionError, match=r"janitor for 'customer' at .*:\d+ must take two"):
        suite.janitor("customer")(_one_arg)  # type: ignore[arg-type]
    suite.janitor("customer")(_two_args)
    with pytest.raises(DefinitionError, match=r"orphan listing for 'customer' at .* must take one"):
        suite.orphans("customer")(_two_args)  # type: ignore[arg-type]
    suite.orphans("customer")(_one_arg)  # type: ignore[arg-type]
    registered: list[object] = [*suite.janitors.values(), *suite.orphan_finders.values()]
    assert registered == [_two_args, _one_arg]
