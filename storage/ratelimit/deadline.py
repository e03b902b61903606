"""A per-call time bound that does not count this process's own stalls as Redis' slowness.

`asyncio.timeout` measures wall time. When the event loop cannot run (a synchronous
render or a first import on the loop, a loaded machine giving the process no CPU), a
call whose reply Redis sent in time still runs out: the reply waits in the socket, and
when the loop runs again the reply's read and the timeout are due in the same loop
iteration. The read only schedules the task's wakeup; the timeout callback then
cancels the task, the reply is dropped, Redis counts as down and every limit fails
open. Retrying is no answer: the scripts charge counters, a second run charges twice.

So the deadline here, when it comes:

* expires through `Timeout.reschedule(now)`, which cancels one loop pass later: a reply
  read in the pass that ran the deadline wakes its task first, and the call ends with
  it (the cancel is then dropped when the timeout's context exits);
* is moved on, by a whole bound, when it fires more than `STALL_TOLERANCE` late: the
  loop could not run, so the call may not have had its bound of time to send, or to
  hear back. At most `MAX_EXTENSIONS` times, so a Redis that never answers still
  fails the call while this process is starved.

Only a deadline that fires on time (the loop was free) with no reply read gives up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# How late a timer may run on a free loop (select's millisecond rounding, a wakeup on
# a busy machine); later than this, the loop was held up.
STALL_TOLERANCE = 0.01
MAX_EXTENSIONS = 3


@asynccontextmanager
async def stall_aware_timeout(seconds: float) -> AsyncIterator[None]:
    """Like `asyncio.timeout(seconds)` (raises TimeoutError), but a deadline that finds
    the loop was stalled gives the call another `seconds` (see the module docstring)."""
    async with asyncio.timeout(None) as timeout:
        deadline = _Deadline(timeout, seconds)
        try:
            yield
        finally:
            deadline.cancel()


class _Deadline:
    def __init__(self, timeout: asyncio.Timeout, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._seconds = seconds
        self._extensions = 0
        self._due = self._loop.time() + seconds
        self._handle = self._loop.call_at(self._due, self._fire)

    def _fire(self) -> None:
        now = self._loop.time()
        if now - self._due > STALL_TOLERANCE and self._extensions < MAX_EXTENSIONS:
            self._extensions += 1
            self._due = now + self._seconds
            self._handle = self._loop.call_at(self._due, self._fire)
            return
        self._timeout.reschedule(now)

    def cancel(self) -> None:
        self._handle.cancel()
