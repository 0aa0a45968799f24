"""The event loop the agent runs on: uvloop where it is installed, else asyncio's own.

uvloop (libuv) keeps asyncio's API and semantics but does the loop's own work (polling,
callbacks, socket I/O, TLS) in C. On the benchmark it cut the agent's CPU per check and the
lateness of its timers (docs/performance.md); nothing in the agent depends on which loop runs.
Its timers have millisecond resolution, which is finer than anything the agent schedules.
"""

from __future__ import annotations

import importlib.util
from typing import Any


def backend_options() -> dict[str, Any]:
    """Return ``anyio.run``'s backend options for the asyncio backend."""
    return {"use_uvloop": importlib.util.find_spec("uvloop") is not None}
