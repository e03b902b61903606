"""Through PgBouncer in transaction mode: the wire spy that guards every pooled test sees
session state when there is some, and the job engine never LISTENs through the pooler
(it LISTENs over the direct URL, or polls without one)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bot.worker import JobKind, WorkerPart
from storage import queue
from storage.db import Database
from storage.queue_listen import PoolerDriver, engine_queries
from tests.pgwire_spy import session_state


@pytest.mark.parametrize(
    ("sql", "in_transaction", "why"),
    [
        ('LISTEN "ch_pgqueuer"', False, "LISTEN"),
        ("UNLISTEN *", False, None),
        ("SELECT pg_advisory_lock($1)", True, "session advisory lock"),
        ("SELECT pg_try_advisory_lock_shared(1)", False, "session advisory lock"),
        ("SELECT pg_advisory_xact_lock($1)", True, None),
        ("SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;", False, None),
        ("SET statement_timeout = 5", False, "SET outside a transaction"),
        ("SET LOCAL statement_timeout = 5", True, None),
        ("SET statement_timeout = 5", True, None),
        ("SELECT set_config('search_path', 'x', false)", False, "SET outside a transaction"),
        ("SELECT set_config('synchronous_commit', 'off', true)", False, None),
    ],
)
def test_what_counts_as_session_state(sql: str, in_transaction: bool, why: str | None) -> None:
    assert session_state(sql, in_transaction=in_transaction) == why


async def test_the_spy_sees_session_state_sent_through_the_pooler(
    pooler: Any, pg_dsn: str, tmp_path
):
    db = Database(dsn=pooler.dsn(pg_dsn), data_dir=tmp_path, transaction_pooler=True, max_size=2)
    await db.open()
    pooler.spy.take()
    try:
        async with db.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(4242)")
            await conn.execute("SELECT pg_advisory_unlock(4242)")
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(4242)")
                await conn.execute("SET LOCAL lock_timeout = '1s'")
            await conn.execute("SET lock_timeout = '2s'")
            await conn.execute("RESET lock_timeout")
    finally:
        await db.close()
    found = pooler.spy.take()
    assert [f.split(":")[0] for f in found] == [
        "session advisory lock",
        "SET outside a transaction",
    ]


async def test_a_pooled_worker_without_a_direct_url_polls_and_never_listens(
    pool: Any, pg_route: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On the pgbouncer route the autouse spy fails this test if the worker LISTENs."""
    pooled = pg_route == "pgbouncer"
    ran: list[str] = []

    async def handler(payload: dict[str, Any]) -> None:
        ran.append(str(payload.get("tag")))

    tag = f"poll-{pg_route}"
    async with pool.acquire() as conn:
        await queue.enqueue(conn, queue.PURGE, {"tag": tag}, dedupe_key=tag)
    worker = WorkerPart(
        pool=lambda: pool,
        kinds={queue.PURGE: JobKind(handler)},
        triggers=[],
        max_concurrent=4,
        poll_seconds=0.2,
        transaction_pooler=pooled,
        direct_dsn=None,
    )
    with caplog.at_level(logging.INFO, logger="bot.worker"):
        await worker.start()
        try:
            async with asyncio.timeout(30):
                while tag not in ran:
                    await asyncio.sleep(0.05)
        finally:
            await worker.stop(5)
    said = [r.getMessage() for r in caplog.records if r.name == "bot.worker"]
    polling = "DATABASE_DIRECT_URL is unset; no LISTEN, polling for jobs every 0.2 s"
    assert any(polling in line for line in said) is pooled


async def test_the_listener_uses_the_direct_url_and_hears_notifies_sent_through_the_pooler(
    pooler: Any, pg_dsn: str, tmp_path
) -> None:
    db = Database(dsn=pooler.dsn(pg_dsn), data_dir=tmp_path, transaction_pooler=True, max_size=2)
    await db.open()
    pooler.spy.take()
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        driver = PoolerDriver(db.pool, listen_dsn=pg_dsn)
        async with driver:
            await driver.add_listener("socialops_test", lambda p: heard.put_nowait(str(p)))
            await driver.notify("socialops_test", "wake up")  # through the pooler
            assert await asyncio.wait_for(heard.get(), 30) == "wake up"
        quiet = PoolerDriver(db.pool, listen_dsn=None)
        async with quiet:
            await quiet.add_listener("socialops_test", lambda p: heard.put_nowait(str(p)))
        assert isinstance(
            engine_queries(db.pool, transaction_pooler=True, direct_dsn=None).driver, PoolerDriver
        )
    finally:
        await db.close()
    assert pooler.spy.statements > 0 and pooler.spy.take() == []  # no LISTEN went through it
