"""The event loop every socialops process runs on: uvloop (libuv's loop), as uvicorn itself
chooses whenever it is installed.

`serve` runs uvicorn inside our own loop (beside the other parts of a process), so
uvicorn's own choice never applied: the web role ran on the standard library's loop
while a plain uvicorn app, like the anchors of `bench/slack_ack.py`, ran on uvloop.
Measured there (2-core machine, 800 signed slash commands at once, our follow-up work on
the same loop): ack p99 189-222 ms on the standard loop, 172 ms on uvloop, against
345 ms for bolt alone and 114 ms for a bare FastAPI route. uvloop is already installed
(PgQueuer, the job engine, depends on it); it is not built for Windows, where the
standard loop runs. The test suite runs on `new_loop` too (`tests/conftest.py`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new event loop (`asyncio.run`'s contract)."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)


def new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the kind every process runs on (the test suite's too)."""
    if sys.platform == "win32":
        return asyncio.new_event_loop()
    import uvloop

    return uvloop.new_event_loop()
