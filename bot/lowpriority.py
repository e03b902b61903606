"""A low-priority lane on the event loop: background work that yields to acknowledgements.

Slack wants its 200 within 3 s, and everything a process does shares one event loop:
the conversation a command starts (the agent's own CPU work between model calls)
runs its steps, each as long as it takes, while later requests wait to be read. On
bench/slack_ack.py (follow-up work of 5 ms CPU per command, on the acks' loop) that
work was most of an ack's p99 in bursts; asyncio has no priorities, hence this.

Work run through `LowPriority.run` takes its steps (each stretch between two awaits)
one at a time, each released by a timer callback, which asyncio runs after the
loop's I/O: a request read before a step is released is answered before that step
runs, so a request waits behind at most two background steps (the one running when
it comes, and the one released before the loop reads it), where plain tasks make it
wait behind every step that is ready. While requests keep
arriving (one within `quiet` seconds), the lane is also held to `share` of the loop's
time: after a step of d seconds, the next waits d * (1 - share) / share. Once they
stop, the lane runs one step per loop iteration.

Hand-written because asyncio schedules ready callbacks first come, first served, and
no maintained library adds priorities to its tasks; this drives a coroutine step by
step inside the caller's own task (same context variables, cancellation, timeouts).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class LowPriority:
    """One lane per event loop's latency-sensitive front (e.g. the Slack adapter).

    `arrived()` on every latency-sensitive request; `run(work)` for background work."""

    def __init__(self, *, quiet: float = 0.002, share: float = 0.25) -> None:
        if not 0 < share <= 1:
            raise ValueError("share is a fraction of the loop's time, in (0, 1]")
        self._quiet = quiet
        self._pause_per_second = (1 - share) / share
        self._last_arrival = float("-inf")
        self._next_release = float("-inf")
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._armed = False

    def arrived(self) -> None:
        """A request that must not wait behind background work has arrived."""
        self._last_arrival = asyncio.get_running_loop().time()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to its end, each of its steps in this lane."""
        return await _Stepped(work, self)

    # --- the lane's turns ------------------------------------------------------------

    def _turn(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        self._waiting.append(turn)
        if not self._armed:
            self._armed = True
            loop.call_at(loop.time(), self._release)
        return turn

    def _ran(self, seconds: float) -> None:
        """A step took `seconds`: while requests arrive, the lane waits its share."""
        now = asyncio.get_running_loop().time()
        if now - self._last_arrival < self._quiet:
            self._next_release = now + seconds * self._pause_per_second

    def _release(self) -> None:
        """Let one waiting step go; called from a timer, so after the loop's I/O."""
        loop = asyncio.get_running_loop()
        while self._waiting and self._waiting[0].done():
            self._waiting.popleft()  # cancelled while waiting
        if not self._waiting:
            self._armed = False
            return
        now = loop.time()
        if now - self._last_arrival < self._quiet and now < self._next_release:
            loop.call_at(min(self._last_arrival + self._quiet, self._next_release), self._release)
            return
        self._waiting.popleft().set_result(None)
        loop.call_at(now, self._release)  # the next one no sooner than the next iteration


class _Stepped(Generic[T]):
    """Awaitable driving `coro` one step per turn of the lane, in the awaiting task."""

    def __init__(self, coro: Coroutine[Any, Any, T], lane: LowPriority) -> None:
        self._coro = coro
        self._lane = lane

    def __await__(self) -> Generator[Any, None, T]:
        coro, lane = self._coro, self._lane
        error: BaseException | None = None
        while True:
            if error is None:
                try:
                    yield from lane._turn().__await__()
                except BaseException as exc:  # cancelled while waiting: the work hears it
                    error = exc
            started = time.perf_counter()
            try:
                yielded = coro.send(None) if error is None else coro.throw(error)
            except StopIteration as stop:
                value: T = stop.value
                return value
            finally:
                lane._ran(time.perf_counter() - started)
            try:
                # Hand the future the step waits on to the task, as `await` would.
                yield yielded
                error = None
            except BaseException as exc:
                error = exc
