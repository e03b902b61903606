"""Follow-up work waits behind the acks: bounded, started once requests pause, never starved."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from bot.slack.followups import FollowUps, Requests, Work

LONG = 60.0  # a wait no test reaches: what is released, is released for another reason


async def guarded(work: Work, name: str) -> None:
    try:
        await work
    except Exception:
        logging.getLogger(__name__).exception("follow-up failed", extra={"work": name})


def recorder() -> tuple[list[str], Callable[[str], Work], asyncio.Event]:
    started: list[str] = []
    seen = asyncio.Event()

    def work(label: str) -> Work:
        async def run() -> None:
            started.append(label)
            seen.set()

        return run()

    return started, work, seen


async def test_work_taken_during_a_request_starts_once_it_is_answered() -> None:
    requests = Requests()
    follow = FollowUps(limit=10, requests=requests, guard=guarded, quiet=0.005, max_wait=LONG)
    started, work, seen = recorder()

    requests.arrived()
    assert follow.start(work("first"), "t")
    requests.arrived()
    assert follow.start(work("second"), "t")
    requests.answered()
    await asyncio.sleep(0.05)
    assert started == []  # one request is still being answered
    assert len(follow) == 2

    requests.answered()
    await asyncio.wait_for(seen.wait(), 5)
    await follow.drain(5)
    assert started == ["first", "second"]  # in the order taken
    assert len(follow) == 0


async def test_steady_arrivals_hold_work_no_longer_than_max_wait() -> None:
    requests = Requests()
    follow = FollowUps(limit=10, requests=requests, guard=guarded, quiet=LONG, max_wait=0.02)
    started, work, seen = recorder()

    requests.arrived()  # never answered: without max_wait this would wait for ever
    assert follow.start(work("held"), "t")
    await asyncio.wait_for(seen.wait(), 5)
    assert started == ["held"]


async def test_past_the_limit_work_is_refused_unstarted() -> None:
    requests = Requests()
    follow = FollowUps(limit=2, requests=requests, guard=guarded, quiet=LONG, max_wait=LONG)
    started, work, _ = recorder()
    gate = asyncio.Event()

    async def blocked() -> None:
        await gate.wait()

    assert follow.start(blocked(), "t")
    assert follow.start(work("waiting"), "t")
    refused = work("refused")
    assert not follow.start(refused, "t")
    with pytest.raises(RuntimeError):  # closed: it can never run (and never warns)
        refused.send(None)

    # Draining starts what waits; capacity returns as work finishes.
    gate.set()
    await follow.drain(5)
    assert started == ["waiting"]
    assert follow.start(work("again"), "t")
    await follow.drain(5)
    assert started == ["waiting", "again"]


async def test_drain_cancels_what_outlives_the_grace() -> None:
    requests = Requests()
    follow = FollowUps(limit=2, requests=requests, guard=guarded, quiet=LONG, max_wait=LONG)
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    assert follow.start(forever(), "t")
    await follow.drain(0.01)
    assert cancelled.is_set()
    assert len(follow) == 0


async def test_a_backlog_starts_in_order_and_pauses_when_a_request_arrives() -> None:
    requests = Requests()
    follow = FollowUps(limit=50, requests=requests, guard=guarded, quiet=0.005, max_wait=LONG)
    started, work, seen = recorder()
    labels = [f"w{i}" for i in range(20)]
    for label in labels:
        assert follow.start(work(label), "t")

    await asyncio.wait_for(seen.wait(), 5)
    requests.arrived()  # the backlog is being started a few a loop pass: the rest waits
    await asyncio.sleep(0.05)
    assert 0 < len(started) < len(labels)
    requests.answered()
    await follow.drain(5)
    assert started == labels
