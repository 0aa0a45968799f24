"""Suite and test definitions: what a check file declares.

Example::

    suite = Suite("invoices", depends_on=["signup"], interval="5m", timeout="60s")

    @suite.test
    async def issue_invoice(t: T) -> None:
        r = await t.http.post("/invoices", json={"amount_pence": 1200})
        assert r.status_code == 201, r.text
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

from synthetic_exporter.core.durations import parse_duration

if TYPE_CHECKING:
    from synthetic_exporter.authoring.context import T
    from synthetic_exporter.authoring.janitor import JanitorContext, Orphan, Resource

TestFunction = Callable[["T"], Awaitable[None]] | Callable[["T"], None]
JanitorFunction = Callable[["JanitorContext", "Resource"], Awaitable[None] | None]
OrphanFinder = Callable[["JanitorContext"], Awaitable[Sequence["Orphan"]] | Sequence["Orphan"]]

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class DefinitionError(ValueError):
    """A suite or test declared with invalid arguments."""


def _check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise DefinitionError(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '-' and '.'"
        )
    return name


def _optional_duration(value: float | str | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise DefinitionError(f"{what}: {exc}") from None
    if seconds <= 0:
        raise DefinitionError(f"{what} must be greater than zero, got {value!r}")
    return seconds


def _where(fn: object) -> str:
    """Return ``file:line`` of a function's definition, or its repr when it has no code."""
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else repr(fn)


def _check_arity(fn: object, count: int, what: str, takes: str) -> None:
    """Refuse ``fn`` unless it can be called with ``count`` positional arguments."""
    if not callable(fn):
        raise DefinitionError(f"{what} must be a function, got {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin or C callable: nothing to inspect, the call will tell
    try:
        signature.bind(*[None] * count)
    except TypeError:
        raise DefinitionError(f"{what} at {_where(fn)} must take {takes}") from None


def _retries(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DefinitionError(f"{what} must be a whole number >= 0, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class TestDef:
    """One test function of a suite."""

    __test__ = False  # not a pytest test class

    name: str
    func: TestFunction
    timeout: float | None
    retries: int | None
    line: int

    @property
    def is_async(self) -> bool:
        """Return whether the test is a coroutine function (else it runs in a thread)."""
        return inspect.iscoroutinefunction(self.func)


class Suite:
    """An ordered group of tests that run together, on their own interval.

    ``interval``, ``timeout`` and ``test_timeout`` take seconds or strings like ``"90s"``;
    ``None`` means the agent's default. ``timeout`` bounds the whole suite run.
    ``stop_on_failure`` skips the remaining tests once one fails, since later steps of a
    scenario usually need the earlier ones' data.
    """

    def __init__(
        self,
        name: str,
        *,
        depends_on: Iterable[str] = (),
        interval: float | str | None = None,
        timeout: float | str | None = None,
        test_timeout: float | str | None = None,
        tags: Iterable[str] = (),
        retries: int = 0,
        stop_on_failure: bool = True,
    ) -> None:
        self.name = _check_name("suite", name)
        self.depends_on: tuple[str, ...] = tuple(depends_on)
        if isinstance(tags, str) or isinstance(depends_on, str):
            raise DefinitionError("depends_on and tags take a list of strings, not one string")
        if name in self.depends_on:
            raise DefinitionError(f"suite {name!r} cannot depend on itself")
        self.tags: tuple[str, ...] = tuple(tags)
        self.interval = _optional_duration(interval, f"suite {name!r} interval")
        self.timeout = _optional_duration(timeout, f"suite {name!r} timeout")
        self.test_timeout = _optional_duration(test_timeout, f"suite {name!r} test_timeout")
        self.retries = _retries(retries, f"suite {name!r} retries")
        self.stop_on_failure = stop_on_failure
        self.tests: list[TestDef] = []
        self.janitors: dict[str, JanitorFunction] = {}
        self.orphan_finders: dict[str, OrphanFinder] = {}
        caller = sys._getframe(1)
        self.file: str = caller.f_code.co_filename
        self.line: int = caller.f_lineno

    def __repr__(self) -> str:
        return f"Suite({self.name!r}, tests={[t.name for t in self.tests]})"

    @overload
    def test(self, func: TestFunction, /) -> TestFunction: ...

    @overload
    def test(
        self, *, timeout: float | str | None = None, retries: int | None = None
    ) -> Callable[[TestFunction], TestFunction]: ...

    def test(
        self,
        func: TestFunction | None = None,
        *,
        timeout: float | str | None = None,
        retries: int | None = None,
    ) -> TestFunction | Callable[[TestFunction], TestFunction]:
        """Register a test: ``@suite.test`` or ``@suite.test(timeout="10s", retries=1)``."""

        def register(fn: TestFunction) -> TestFunction:
            name = _check_name("test", fn.__name__)
            _check_arity(fn, 1, f"test {name!r}", "one argument, the test context `t`")
            if any(t.name == name for t in self.tests):
                raise DefinitionError(f"suite {self.name!r} already has a test named {name!r}")
            self.tests.append(
                TestDef(
                    name=name,
                    func=fn,
                    timeout=_optional_duration(timeout, f"test {name!r} timeout"),
                    retries=None if retries is None else _retries(retries, f"test {name!r}"),
                    line=fn.__code__.co_firstlineno,
                )
            )
            return fn

        return register(func) if func is not None else register

    def janitor(self, kind: str) -> Callable[[JanitorFunction], JanitorFunction]:
        """Register the function that deletes tracked resources of ``kind``."""
        _check_name("resource kind", kind)

        def register(fn: JanitorFunction) -> JanitorFunction:
            _check_arity(
                fn,
                2,
                f"janitor for {kind!r}",
                "two arguments, the janitor context `j` and the resource `r`",
            )
            self.janitors[kind] = fn
            return fn

        return register

    def orphans(self, kind: str) -> Callable[[OrphanFinder], OrphanFinder]:
        """Register the listing of ``kind``'s synthetic data (after the kind's janitor).

        The function receives a ``JanitorContext`` and returns ``Orphan`` objects: every piece
        of throwaway test data of this kind on the server, with its creation time and the text
        that carries its ``t.intend`` key. The sweep deletes, through the janitor, what no run
        holds. Required by ``t.intend(kind)``.
        """
        _check_name("resource kind", kind)
        if kind not in self.janitors:
            raise DefinitionError(
                f"suite {self.name!r} has no janitor for {kind!r}: declare"
                f" @suite.janitor({kind!r}) before @suite.orphans({kind!r})"
            )

        def register(fn: OrphanFinder) -> OrphanFinder:
            _check_arity(
                fn, 1, f"orphan listing for {kind!r}", "one argument, the janitor context `j`"
            )
            self.orphan_finders[kind] = fn
            return fn

        return register
