"""Run the real job engine (bot.worker on PgQueuer) inside a test until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

import asyncpg

from bot.worker import JobKind, WorkerPart
from tests.pgbouncer import worker_route


async def run_worker_until(
    pool: asyncpg.Pool,
    kinds: Mapping[str, JobKind],
    done: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 30.0,
    workers: int = 1,
    max_concurrent: int = 8,
) -> float:
    """Start `workers` workers, wait for `done()`, stop them; seconds it took."""
    parts = [
        WorkerPart(
            pool=lambda: pool,
            kinds=kinds,
            triggers=[],
            max_concurrent=max_concurrent,
            heartbeat_seconds=2.0,
            poll_seconds=0.5,
            **worker_route(pool),  # through the test pooler: LISTEN over the direct URL
        )
        for _ in range(workers)
    ]
    started = time.monotonic()
    for part in parts:
        await part.start()
    try:
        while not await done():
            if time.monotonic() - started > timeout:
                raise TimeoutError("the jobs did not finish in time")
            await asyncio.sleep(0.05)
        return time.monotonic() - started
    finally:
        for part in parts:
            await part.stop(10.0)


async def queue_is_empty(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval("SELECT count(*) FROM pgqueuer")
