"""Where the job engine LISTENs when DATABASE_URL is a transaction pooler.

PgQueuer wakes idle workers with LISTEN/NOTIFY, and LISTEN needs a session: through a
transaction pooler (Supavisor on 6543, PgBouncer in transaction mode) the LISTEN lands on
whichever server connection ran it and its notifications are lost. So behind such a
pooler the engine's queries still go through the pool, and its listener either gets a
connection of its own to DATABASE_DIRECT_URL (session mode), or there is none and the
worker polls (every dequeue timeout, PgQueuer's poll interval). NOTIFY itself is fine
through the pooler: it is sent at commit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Self

import asyncpg
from pgqueuer.adapters.drivers.asyncpg import AsyncpgPoolDriver, Relay
from pgqueuer.core.tm import TaskManager
from pgqueuer.ports.driver import NotifyCallback
from pgqueuer.queries import Queries

from storage.db import asyncpg_dsn

log = logging.getLogger(__name__)


class PoolerDriver:
    """PgQueuer's driver protocol: statements through the pool, LISTEN on `listen_dsn`'s
    own connection, or nowhere when `listen_dsn` is None (the engine then polls)."""

    def __init__(self, pool: asyncpg.Pool, *, listen_dsn: str | None) -> None:
        self._statements = AsyncpgPoolDriver(pool)
        self._listen_dsn = listen_dsn
        self._listener: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._entered = 0

    async def fetch(self, query: str, *args: object) -> list[dict[str, object]]:
        return await self._statements.fetch(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        return await self._statements.execute(query, *args)

    async def notify(self, channel: str, payload: str) -> None:
        await self._statements.notify(channel, payload)

    async def add_listener(self, channel: str, callback: NotifyCallback) -> None:
        if self._listen_dsn is None:
            return
        async with self._lock:
            if self._listener is None:
                self._listener = await asyncpg.connect(asyncpg_dsn(self._listen_dsn))
            await self._listener.add_listener(channel, Relay(callback))

    async def remove_listener(self, channel: str, callback: NotifyCallback) -> None:
        async with self._lock:
            if self._listener is not None:
                await self._listener.remove_listener(channel, Relay(callback))

    @property
    def shutdown(self) -> asyncio.Event:
        return self._statements.shutdown

    @property
    def tm(self) -> TaskManager:
        return TaskManager()

    async def __aenter__(self) -> Self:
        self._entered += 1
        return self

    async def __aexit__(self, *_: object) -> None:
        # The queue and schedule managers may share a driver; the last exit closes it.
        self._entered -= 1
        if self._entered > 0:
            return
        async with self._lock:
            listener, self._listener = self._listener, None
            if listener is not None:
                await listener.close()


def engine_queries(
    pool: asyncpg.Pool, *, transaction_pooler: bool, direct_dsn: str | None
) -> Queries:
    """PgQueuer's queries over `pool`; behind a transaction pooler, LISTEN over `direct_dsn`
    (or no LISTEN at all without one)."""
    if not transaction_pooler:
        return Queries.from_asyncpg_pool(pool)
    return Queries(PoolerDriver(pool, listen_dsn=direct_dsn))


def describe_wakeups(
    *, transaction_pooler: bool, direct_dsn: str | None, poll_seconds: float
) -> str:
    """One line for the log: how idle workers learn of new jobs."""
    if not transaction_pooler:
        return "job engine: LISTEN/NOTIFY on a pool connection"
    if direct_dsn is not None:
        return "job engine: DATABASE_URL is a transaction pooler; LISTEN over DATABASE_DIRECT_URL"
    return (
        "job engine: DATABASE_URL is a transaction pooler and DATABASE_DIRECT_URL is unset; "
        f"no LISTEN, polling for jobs every {poll_seconds:g} s"
    )
