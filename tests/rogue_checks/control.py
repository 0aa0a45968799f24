"""A check file that misbehaves on purpose (tests/test_reliability.py)."""

from synthetic_exporter import Suite, T

suite = Suite("control", interval="1s")


@suite.test
async def ticks(t: T) -> None:
    t.log("tick")
