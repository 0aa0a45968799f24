"""-k / -m expressions: pytest's grammar, substring and tag matching, narrowed suites."""

from __future__ import annotations

import pytest

from synthetic_exporter import Suite, T
from synthetic_exporter.engine.selection import (
    ExpressionError,
    keyword_matcher,
    parse_expression,
    select,
)


def matches(expression: str, *words: str) -> bool:
    """Evaluate ``expression`` where an identifier is true when it is one of ``words``."""
    return parse_expression(expression)(lambda ident: ident in words)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("a", True),
        ("b", False),
        ("not b", True),
        ("a and b", False),
        ("a or b", True),
        ("b or a and c", False),  # and binds tighter than or
        ("(b or a) and not c", True),
        ("not not a", True),
        ("suite/test-1.x", False),
    ],
)
def test_grammar_is_pytests(expression: str, expected: bool) -> None:
    assert matches(expression, "a") is expected


@pytest.mark.parametrize("bad", ["", "a and", "(a", "a)", "a b", "and", "a $ b", "not"])
def test_malformed_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(bad)


def make_suites() -> dict[str, Suite]:
    checkout = Suite("checkout", tags=["Billing", "smoke"])
    search = Suite("search", tags=["smoke"])

    async def pay_by_card(t: T) -> None: ...
    async def refund(t: T) -> None: ...
    async def query(t: T) -> None: ...

    checkout.test(pay_by_card)
    checkout.test(refund)
    search.test(query)
    return {"checkout": checkout, "search": search}


def names(selected: dict[str, Suite]) -> dict[str, list[str]]:
    return {name: [t.name for t in suite.tests] for name, suite in selected.items()}


def test_keywords_match_substrings_of_suite_test_and_tags_case_insensitively() -> None:
    suites = make_suites()
    assert names(select(suites, parse_expression("CARD"), None)) == {"checkout": ["pay_by_card"]}
    assert names(select(suites, parse_expression("checkout/re"), None)) == {"checkout": ["refund"]}
    assert names(select(suites, parse_expression("billing and not refund"), None)) == {
        "checkout": ["pay_by_card"]
    }
    assert select(suites, parse_expression("nothing"), None) == {}
    assert len(suites["checkout"].tests) == 2  # the loaded suite is not narrowed


def test_tags_match_exactly() -> None:
    suites = make_suites()
    assert list(select(suites, None, parse_expression("smoke and not Billing"))) == ["search"]
    assert list(select(suites, None, parse_expression("smok"))) == []
    assert keyword_matcher(suites["search"], "query")("SMOK")
