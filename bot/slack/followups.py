"""Follow-up work after an ack: bounded, and started only once the acks have paused.

Slack gives an endpoint 3 s to answer, then retries and shows the user an error; the
work a request starts (the agent, the platforms, the reply) has no such deadline. Both
share one event loop, and asyncio has no priorities: once a follow-up runs, an ack that
arrives waits behind every step of it (the agent's own CPU, a few ms a step). So
follow-ups are held back while requests are arriving:

- **Admission.** At most `limit` follow-ups are waiting or running; past that `start`
  says no and the caller answers "busy", so a burst never queues unbounded work.
- **Acks first.** A follow-up is started once no request is in flight and none has
  arrived for `quiet` seconds, or at the latest `max_wait` after it was taken, so a
  steady stream of requests delays work by at most that, never starves it. After a
  burst, what waits is started a few at a time, one loop pass each, so a request that
  arrives then is not held up by a hundred follow-ups' first steps at once.

One timer serves all waiting work of a `FollowUps`: arrivals only stamp a time, and
the timer, when it fires, starts what may start and re-arms itself for the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

# Between two requests of a burst the loop idles well under a millisecond; a person's
# next command comes seconds later. 2 ms tells the two apart.
QUIET_SECONDS = 0.005
# The longest a follow-up is held while requests keep arriving (a person waits this
# much longer for the first words of the answer, against Slack's 3 s for the ack).
MAX_WAIT_SECONDS = 1.0
# Follow-ups started in one loop pass once the acks pause. Each one's first step (the
# command parsed, its replay check sent) is a fraction of a millisecond of CPU; a
# request arriving meanwhile waits for at most this many of them.
PER_PASS = 4

Work = Coroutine[Any, Any, None]


class Requests:
    """The requests being answered now, and when the latest arrived."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.last_arrival = 0.0

    def arrived(self) -> None:
        """A request began: follow-ups wait until it is answered."""
        self.in_flight += 1
        self.last_arrival = asyncio.get_running_loop().time()

    def answered(self) -> None:
        """A request's response has been sent."""
        self.in_flight -= 1


class FollowUps:
    """Background tasks started behind the acks of `requests` (see the module docstring)."""

    def __init__(
        self,
        *,
        limit: int,
        requests: Requests,
        guard: Callable[[Work, str], Work],
        quiet: float = QUIET_SECONDS,
        max_wait: float = MAX_WAIT_SECONDS,
    ) -> None:
        self._limit = limit
        self._requests = requests
        self._guard = guard  # wraps each task's work: logs what it raises
        self._quiet = quiet
        self._max_wait = max_wait
        self._waiting: deque[tuple[float, Work, str]] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Handle | None = None

    def __len__(self) -> int:
        return len(self._waiting) + len(self._running)

    def start(self, work: Work, name: str) -> bool:
        """Take `work` to run once the acks pause; False (and `work` never started) when
        `limit` are already waiting or running."""
        if len(self) >= self._limit:
            work.close()  # never started: nothing to clean up, no "never awaited" warning
            return False
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._requests.last_arrival = max(self._requests.last_arrival, now)
        self._waiting.append((now, work, name))
        if self._timer is None:
            self._timer = loop.call_at(now + min(self._quiet, self._max_wait), self._release)
        return True

    async def drain(self, grace: float) -> None:
        """Start whatever waits, let it all finish (up to `grace` seconds), then cancel
        the rest."""
        self._release(force=True)
        if self._running:
            _, pending = await asyncio.wait(self._running, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _release(self, force: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()  # a no-op when it is the timer that called
            self._timer = None
        now = loop.time()
        quiet_at = self._requests.last_arrival + self._quiet
        if force:
            while self._waiting:
                self._run(*self._waiting.popleft()[1:])
            return
        if self._requests.in_flight == 0 and now >= quiet_at:
            # A few a loop pass: a request that arrives meanwhile is read in the next
            # pass and waits behind these first steps, not behind all of them.
            for _ in range(min(PER_PASS, len(self._waiting))):
                self._run(*self._waiting.popleft()[1:])
            if self._waiting:
                self._timer = loop.call_soon(self._release)
            return
        while self._waiting and now >= self._waiting[0][0] + self._max_wait:
            self._run(*self._waiting.popleft()[1:])  # held long enough: runs regardless
        if self._waiting:
            due = min(max(quiet_at, now + self._quiet), self._waiting[0][0] + self._max_wait)
            self._timer = loop.call_at(due, self._release)

    def _run(self, work: Work, name: str) -> None:
        task = asyncio.create_task(self._guard(work, name), name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
