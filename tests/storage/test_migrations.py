"""Migrations: fresh database to latest, idempotent, and exactly-once under concurrency."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from storage.db import load_migrations, migrate


async def _schema(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
    rows = await conn.fetch(
        """
        SELECT table_name, column_name, data_type FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY table_name, column_name
        """
    )
    return [(r["table_name"], r["column_name"], r["data_type"]) for r in rows]


async def test_fresh_database_reaches_latest_and_second_run_changes_nothing(empty_db: str) -> None:
    pool = await asyncpg.create_pool(empty_db, min_size=1, max_size=2)
    try:
        applied = await migrate(pool)
        assert applied == [m.name for m in load_migrations()]
        async with pool.acquire() as conn:
            tables = {t for t, _, _ in await _schema(conn)}
            assert {
                "workspaces",
                "chat_users",
                "linked_accounts",
                "oauth_states",
                "posts",
                "metric_snapshots",
                "digest_subscriptions",
                "digest_runs",
                "conversation_messages",
                "pending_actions",
                "audit_log",
                "schema_migrations",
            } <= tables
            before = await _schema(conn)
            versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert await migrate(pool) == []
        async with pool.acquire() as conn:
            assert await _schema(conn) == before
            again = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert again == versions
    finally:
        await pool.close()


async def test_constraints_hold_the_invariants(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        ws = await conn.fetchval(
            "INSERT INTO workspaces (frontend, external_id) VALUES ('slack', $1) RETURNING id",
            f"T{os.urandom(4).hex()}",
        )
        sub = await conn.fetchval(
            "INSERT INTO digest_subscriptions (workspace_id, channel_id) VALUES ($1, 'C1') RETURNING id",
            ws,
        )
        await conn.execute(
            "INSERT INTO digest_runs (subscription_id, local_date) VALUES ($1, '2026-11-25')", sub
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO digest_runs (subscription_id, local_date) VALUES ($1, '2026-11-25')",
                sub,
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO chat_users (workspace_id, external_id) VALUES (-1, 'U1')"
            )
        user = await conn.fetchval(
            "INSERT INTO chat_users (workspace_id, external_id) VALUES ($1, 'U1') RETURNING id", ws
        )
        insert_account = (
            "INSERT INTO linked_accounts (ref, workspace_id, owner_id, platform, external_id, handle)"
            " VALUES ($1, $2, $3, 'youtube', 'UC1', 'Chan')"
        )
        await conn.execute(insert_account, f"yt-{os.urandom(4).hex()}", ws, user)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert_account, f"yt-{os.urandom(4).hex()}", ws, user)


async def test_three_concurrent_migrate_processes_apply_each_file_once(empty_db: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_db, "LOG_FORMAT": "text"}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "migrate",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    total = len(load_migrations())
    counts = sorted(int(out.split()[1]) for out, _ in outputs)
    # Exactly one process applied everything; the others found nothing to do.
    assert counts == [0, 0, total]
    conn = await asyncpg.connect(empty_db)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations")
    finally:
        await conn.close()
    assert len(rows) == total


async def test_migrate_refuses_a_gap_or_a_duplicate_before_touching_the_database(
    empty_db: str,
) -> None:
    from storage.db import Migration

    one = Migration(1, "0001_a.sql", "CREATE TABLE gap_a (id int)")
    three = Migration(3, "0003_c.sql", "CREATE TABLE gap_c (id int)")
    pool = await asyncpg.create_pool(empty_db, min_size=1, max_size=2)
    try:
        with pytest.raises(ValueError, match=r"gap \(missing \[2\]\)"):
            await migrate(pool, [one, three])
        with pytest.raises(ValueError, match="duplicate"):
            await migrate(pool, [one, one])
        assert await pool.fetchval("SELECT to_regclass('gap_a')") is None
    finally:
        await pool.close()
