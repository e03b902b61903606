"""The limiter's Redis call bound against this process's own stalls.

A call whose reply came while the event loop could not run is Redis' answer, charged
once; a Redis that does not answer while the loop is free is an outage, within the
bound. A relay on threads of its own (they run while the loop cannot) stands between
the limiter and the real Redis, and freezes the loop as a synchronous render would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest

from integrations.capabilities import QuotaCounter
from storage.ratelimit import Budgets
from storage.ratelimit.deadline import MAX_EXTENSIONS
from storage.redis import RedisHandle
from tests.storage.limiter import POLICY

BOUND = 0.2  # the limiter's call bound here
STALL = 0.5  # how long the loop is frozen: past the bound
QUOTAS = {"alpha": (QuotaCounter("units", "units", 100),)}


# What the relay does with the next request: "answered": Redis gets it at once and
# answers while the loop is frozen; "held": the loop is frozen first, and Redis gets the
# request only once the loop runs again; "dropped": Redis never gets it (nor anything
# after it on that connection).
Plan = Literal["answered", "held", "dropped"]


class Relay:
    """A TCP relay to the real Redis that acts on the next request as `plan` says."""

    def __init__(self, target: RedisHandle) -> None:
        kwargs = target.client.connection_pool.connection_kwargs
        self._unix = kwargs.get("path")
        self._address = (kwargs.get("host", "localhost"), kwargs.get("port", 6379))
        self.db = kwargs.get("db", 0)
        self.plan: Plan | None = None
        self.frozen = 0  # times the loop was frozen
        self._loop = asyncio.get_running_loop()
        self._answered = threading.Event()
        self._resumed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = [self._server]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for s in list(self._sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked on it
            s.close()

    def _upstream(self) -> socket.socket:
        if self._unix:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self._unix)
            return s
        return socket.create_connection(self._address)

    def _accept(self) -> None:
        while True:
            try:
                ours, _ = self._server.accept()
            except OSError:  # closed
                return
            theirs = self._upstream()
            self._sockets += (ours, theirs)
            threading.Thread(target=self._requests, args=(ours, theirs), daemon=True).start()
            threading.Thread(target=self._replies, args=(theirs, ours), daemon=True).start()

    def _requests(self, ours: socket.socket, theirs: socket.socket) -> None:
        dropping = False
        while data := _recv(ours):
            plan, self.plan = self.plan, None
            dropping = dropping or plan == "dropped"
            if dropping:
                continue
            if plan == "answered":
                self._answered.clear()
                self._loop.call_soon_threadsafe(self._freeze, self._answered)
            elif plan == "held":
                self._resumed.clear()
                self._loop.call_soon_threadsafe(self._freeze, None)
                self._resumed.wait(10)
            theirs.sendall(data)

    def _replies(self, theirs: socket.socket, ours: socket.socket) -> None:
        while data := _recv(theirs):
            ours.sendall(data)
            self._answered.set()

    def _freeze(self, until: threading.Event | None) -> None:
        """On the event loop: block it past the bound (after Redis answered, if `until`)."""
        if until is None or until.wait(10):
            self.frozen += 1
        time.sleep(STALL)
        self._resumed.set()


def _recv(s: socket.socket) -> bytes:
    try:
        return s.recv(65536)
    except OSError:
        return b""


@pytest.fixture
async def relayed(redis: RedisHandle, tmp_path: Path) -> AsyncIterator[tuple[Relay, Budgets]]:
    """Budgets talking to the session's Redis through a relay (the keys `redis` cleans)."""
    relay = Relay(redis)
    handle = RedisHandle(
        url=f"redis://127.0.0.1:{relay.port}/{relay.db}",
        data_dir=tmp_path,
        key_prefix=redis.key_prefix,
    )
    await handle.open()
    budgets = Budgets(
        redis=handle,
        policy=POLICY,
        quotas=QUOTAS,
        call_timeout=BOUND,
        outage_probe_interval=0,
    )
    # The connection opened and the script loaded, so the next request is EVALSHA.
    assert (await budgets.reserve("alpha", None, {"units": 1})).allowed
    yield relay, budgets
    await handle.close()
    relay.close()


@pytest.mark.parametrize("plan", ["answered", "held"])
async def test_a_stall_of_this_process_is_not_an_outage(
    relayed: tuple[Relay, Budgets], plan: Plan
) -> None:
    """The loop frozen past the bound mid-call, Redis answering during the freeze or
    only after it: Redis' answer, counted once, and no outage."""
    relay, budgets = relayed
    relay.plan = plan
    decision = await budgets.reserve("alpha", None, {"units": 10})
    assert relay.frozen == 1  # the loop was frozen during the call (after Redis answered)
    assert decision.allowed and not decision.unavailable  # Redis answered (fails closed)
    assert decision.remaining == 100 - 1 - 10  # charged once, not run again
    assert not budgets.redis_down
    rows = await budgets.report(workspace_id=1, chat_user_id=1)
    assert [r.used for r in rows if r.platform == "alpha"] == [1 + 10]


async def test_a_redis_that_does_not_answer_is_still_an_outage(
    relayed: tuple[Relay, Budgets],
) -> None:
    """The loop free, no reply: the call gives up at the bound and Redis counts as down."""
    relay, budgets = relayed
    relay.plan = "dropped"
    loop = asyncio.get_running_loop()
    started = loop.time()
    decision = await asyncio.wait_for(budgets.reserve("alpha", None, {"units": 10}), timeout=5)
    elapsed = loop.time() - started
    assert not decision.allowed and decision.unavailable
    assert budgets.redis_down
    # A free loop gives up at BOUND; a deadline a loaded machine made late is extended,
    # at most MAX_EXTENSIONS times.
    assert elapsed < BOUND * (1 + MAX_EXTENSIONS)
    # Redis is back for the next call (a new connection), and the lost one charged nothing.
    assert (await budgets.reserve("alpha", None, {"units": 5})).remaining == 100 - 1 - 5
    assert not budgets.redis_down
