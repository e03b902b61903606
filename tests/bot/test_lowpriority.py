"""The low-priority lane: background steps give way to requests, and stay correct coroutines."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import time

import pytest

from bot.lowpriority import LowPriority

STEP_SECONDS = 0.02


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _worker(lane: LowPriority, steps: int, log: list[str]) -> None:
    async def work() -> None:
        for n in range(steps):
            _burn(STEP_SECONDS)  # a step of real CPU work, as the agent's are
            log.append(f"step{n}")
            await asyncio.sleep(0)

    await lane.run(work())


async def test_a_request_waits_behind_at_most_two_background_steps() -> None:
    """Steps of many workers are released one per loop iteration, after the loop's I/O."""
    lane = LowPriority()
    log: list[str] = []
    workers = [asyncio.create_task(_worker(lane, 10, log)) for _ in range(8)]
    await asyncio.sleep(0)  # the workers are waiting for their first turn
    reader, writer = await _socket_pair()
    served = asyncio.get_running_loop().create_future()

    def on_request() -> None:
        lane.arrived()
        log.append("request")
        served.set_result(None)

    asyncio.get_running_loop().add_reader(reader.fileno(), on_request)
    try:
        await asyncio.sleep(STEP_SECONDS * 1.5)  # a step or two ran
        before = len(log)
        writer.send(b"x")  # a request arrives while many steps are ready
        await served
        # Behind the step that was running when it came and the one released before it was
        # read; plain tasks would run every ready step (one per worker) before reading it.
        assert log.index("request") - before <= 2, (before, log)
        assert len(log) < 8 * 10  # work was still waiting
    finally:
        asyncio.get_running_loop().remove_reader(reader.fileno())
        reader.close()
        writer.close()
    await asyncio.gather(*workers)
    assert len(log) == 8 * 10 + 1


async def test_while_requests_arrive_the_lane_takes_its_share_only() -> None:
    lane = LowPriority(quiet=1.0, share=0.25)
    log: list[str] = []
    lane.arrived()  # requests keep arriving for the next second
    start = time.perf_counter()
    await _worker(lane, 3, log)
    elapsed = time.perf_counter() - start
    # 3 steps of 20 ms at a quarter of the loop: about 60 ms working and 120 ms waiting.
    assert elapsed >= 3 * STEP_SECONDS + 2 * 3 * STEP_SECONDS * 0.9
    assert log == ["step0", "step1", "step2"]


async def test_results_exceptions_and_context_pass_through() -> None:
    lane = LowPriority()
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def answer() -> str:
        await asyncio.sleep(0.001)
        return var.get()

    async def fail() -> None:
        await asyncio.sleep(0)
        raise LookupError("from the work")

    var.set("caller's")
    assert await lane.run(answer()) == "caller's"
    with pytest.raises(LookupError, match="from the work"):
        await lane.run(fail())


@pytest.mark.parametrize("where", ["waiting for its turn", "inside the work"])
async def test_cancellation_and_timeouts_reach_the_work(where: str) -> None:
    lane = LowPriority(quiet=10.0)
    cleaned: list[str] = []
    started = asyncio.Event()

    async def work() -> None:
        try:
            started.set()
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cleaned.append("cancelled")
            raise

    if where == "waiting for its turn":
        lane.arrived()
        lane._ran(1.0)  # the lane owes the loop three seconds: the work waits its turn
        task = asyncio.create_task(lane.run(work()))
        await asyncio.sleep(0.01)
        assert not started.is_set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == []  # never started: closed, not run
    else:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await lane.run(work())
        assert cleaned == ["cancelled"]


async def _socket_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b
