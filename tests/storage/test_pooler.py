"""Postgres behind a transaction pooler (Supabase Supavisor, port 6543): detection, no
prepared-statement cache, and migrations over the direct session URL only."""

from __future__ import annotations

import pytest

from bot.doctor import connection_budget, report_lines
from bot.services import Services
from storage.db import Database, asyncpg_dsn, is_transaction_pooler

SUPA = "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com"


@pytest.mark.parametrize(
    ("dsn", "setting", "expected"),
    [
        (f"{SUPA}:6543/postgres", "auto", True),
        (f"{SUPA}:5432/postgres", "auto", False),
        (f"{SUPA}:5432/postgres?pgbouncer=true", "auto", True),
        (f"{SUPA}:5432/postgres?pgbouncer=false", "auto", False),
        (f"{SUPA}:6543/postgres", "session", False),
        (f"{SUPA}:5432/postgres", "transaction", True),
        ("postgresql://postgres@127.0.0.1/test", "auto", False),
    ],
)
def test_transaction_pooler_detection(dsn, setting, expected):
    assert is_transaction_pooler(dsn, setting) is expected


def flagged(dsn: str) -> str:
    """`dsn` marked as a pooler URL (the test servers' DSNs may already have a query)."""
    return dsn + ("&" if "?" in dsn else "?") + "pgbouncer=true"


def test_the_pooler_flag_is_not_sent_to_the_server():
    assert asyncpg_dsn(f"{SUPA}:5432/db?pgbouncer=true&sslmode=require") == (
        f"{SUPA}:5432/db?sslmode=require"
    )


async def test_a_pooler_pool_has_no_statement_cache(pg_dsn, tmp_path):
    db = Database(dsn=flagged(pg_dsn), data_dir=tmp_path, transaction_pooler=True)
    await db.open()
    try:
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SELECT 41 + 1") == 42
            assert conn._stmt_cache.get_max_size() == 0
    finally:
        await db.close()
    plain = Database(dsn=pg_dsn, data_dir=tmp_path)
    await plain.open()
    try:
        async with plain.pool.acquire() as conn:
            assert conn._stmt_cache.get_max_size() > 0
    finally:
        await plain.close()


async def test_migrations_need_the_direct_url_behind_a_pooler(make_settings, empty_db):
    pooled = flagged(empty_db)
    refused = Services(settings=make_settings(database_url=pooled))
    with pytest.raises(RuntimeError, match="DATABASE_DIRECT_URL"):
        await refused.initialize(run_migrations=True)
    assert "set DATABASE_DIRECT_URL" in "\n".join(report_lines(refused.settings))
    services = Services(settings=make_settings(database_url=pooled, database_direct_url=empty_db))
    await services.initialize(run_migrations=True)
    try:
        versions = await services.db.pool.fetchval("SELECT count(*) FROM schema_migrations")
        assert versions >= 8
        assert await services.migrate() == []  # once only
    finally:
        await services.shutdown()
    said = "\n".join(report_lines(services.settings))
    assert "migrations use DATABASE_DIRECT_URL, and so does the worker's LISTEN" in said


async def test_pool_size_is_a_setting_and_doctor_sums_a_deployment(make_settings):
    settings = make_settings(database_pool_size=4, database_direct_url="postgresql://x@h:5432/d")
    services = Services(settings=settings)
    await services.db.open()
    try:
        assert services.db.pool.get_max_size() == 4
    finally:
        await services.db.close()
    line = connection_budget(settings, web=2, workers=3)
    assert "2 web + 3 worker" in line and "= up to 20" in line and "DATABASE_DIRECT_URL" in line
    direct = make_settings(
        database_url="postgresql://x@h:5432/d", database_direct_url="postgresql://x@h:5432/d"
    )
    # Not a pooler: the workers LISTEN on their pools.
    assert "LISTEN" not in connection_budget(direct, web=2, workers=3)
    pooled = make_settings(
        database_url="postgresql://x@h:6543/d", database_direct_url="postgresql://x@h:5432/d"
    )
    assert "+3 for the workers' LISTEN" in connection_budget(pooled, web=2, workers=3)
