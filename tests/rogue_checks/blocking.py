"""A check file that misbehaves on purpose (tests/test_reliability.py)."""

import time

from synthetic_exporter import Suite, T

suite = Suite("blocking", interval="4s", test_timeout="1s")


@suite.test
async def holds_the_loop(t: T) -> None:
    time.sleep(1.5)  # noqa: ASYNC251  # the point of this check
