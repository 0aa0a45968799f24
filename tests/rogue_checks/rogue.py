"""A check file that misbehaves on purpose (tests/test_reliability.py)."""

import asyncio

from synthetic_exporter import JanitorContext, Resource, Suite, T

suite = Suite("rogue", interval="1s", stop_on_failure=False)


@suite.janitor("thing")
def explode(j: JanitorContext, r: Resource) -> None:
    raise SystemExit(3)


@suite.test
async def interrupts(t: T) -> None:
    raise KeyboardInterrupt


@suite.test
def exits(t: T) -> None:
    raise SystemExit(4)


@suite.test
async def cancels(t: T) -> None:
    raise asyncio.CancelledError


@suite.test
async def closes(t: T) -> None:
    raise GeneratorExit


@suite.test
async def in_subtest(t: T) -> None:
    async def sub(t: T) -> None:
        raise KeyboardInterrupt

    await t.run("sub", sub)


@suite.test
async def in_cleanup_and_janitor(t: T) -> None:
    def leave() -> None:
        raise SystemExit(5)

    t.cleanup(leave, name="leave")
    t.track("thing", "thing-1")
