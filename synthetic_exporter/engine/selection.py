r"""``run -k EXPR`` and ``-m TAG_EXPR``: pytest's keyword expressions over suites and tests.

The grammar is pytest's: ``or`` binds loosest, then ``and``, then ``not``; parentheses group;
any other word is an identifier (letters, digits and ``_ - . / : + [ ] \``). Under ``-k`` an
identifier matches when it is a case-insensitive substring of the test's ``suite/test`` name
or of one of its suite's tags; under ``-m`` when it is exactly one of the suite's tags.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping

from synthetic_exporter.authoring.suite import Suite, TestDef

Matcher = Callable[[str], bool]
Expression = Callable[[Matcher], bool]

_TOKEN = re.compile(r"\s*(?:(\()|(\))|([\w\-.:+\[\]\\/]+))")
_KEYWORDS = frozenset({"and", "or", "not"})


class ExpressionError(ValueError):
    """An expression that cannot be parsed, with the column of the problem."""


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"unexpected character {text[position:].lstrip()[0]!r}")
        tokens.append(match.group(match.lastindex or 0))
        position = match.end()
    return tokens


class _Parser:
    """A recursive-descent parser producing a closure over a matcher."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExpressionError("unexpected end of expression")
        self.index += 1
        return token

    def parse(self) -> Expression:
        if self.peek() is None:
            raise ExpressionError("empty expression")
        expression = self.or_expression()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()!r}")
        return expression

    def or_expression(self) -> Expression:
        parts = [self.and_expression()]
        while self.peek() == "or":
            self.take()
            parts.append(self.and_expression())
        return parts[0] if len(parts) == 1 else lambda m: any(p(m) for p in parts)

    def and_expression(self) -> Expression:
        parts = [self.not_expression()]
        while self.peek() == "and":
            self.take()
            parts.append(self.not_expression())
        return parts[0] if len(parts) == 1 else lambda m: all(p(m) for p in parts)

    def not_expression(self) -> Expression:
        token = self.take()
        if token == "not":
            inner = self.not_expression()
            return lambda m: not inner(m)
        if token == "(":
            inner = self.or_expression()
            if self.take() != ")":
                raise ExpressionError("expected ')'")
            return inner
        if token == ")" or token in _KEYWORDS:
            raise ExpressionError(f"unexpected {token!r}")
        return lambda m: m(token)


def parse_expression(text: str) -> Expression:
    """Parse a ``-k`` / ``-m`` expression; raise :class:`ExpressionError` if it is malformed."""
    return _Parser(text).parse()


def keyword_matcher(suite: Suite, test_name: str) -> Matcher:
    """Return ``-k``'s matcher for one test: substring of ``suite/test`` or of a tag."""
    words = [f"{suite.name}/{test_name}".lower(), *(tag.lower() for tag in suite.tags)]
    return lambda ident: any(ident.lower() in word for word in words)


def tag_matcher(suite: Suite) -> Matcher:
    """Return ``-m``'s matcher for a suite: exactly one of its tags."""
    return lambda ident: ident in suite.tags


def select(
    suites: Mapping[str, Suite], by_keyword: Expression | None, by_tag: Expression | None
) -> dict[str, Suite]:
    """Return the suites with at least one selected test, each holding only those tests.

    The originals are not changed: a suite that is only a dependency still runs whole.
    """
    selected: dict[str, Suite] = {}
    for name, suite in suites.items():
        if by_tag is not None and not by_tag(tag_matcher(suite)):
            continue
        tests = [
            t
            for t in suite.tests
            if by_keyword is None or by_keyword(keyword_matcher(suite, t.name))
        ]
        if tests:
            selected[name] = with_tests(suite, tests)
    return selected


def with_tests(suite: Suite, tests: list[TestDef]) -> Suite:
    """Return a copy of ``suite`` holding only ``tests`` (the original is not changed)."""
    narrowed = copy.copy(suite)
    narrowed.tests = tests
    return narrowed
