"""Shared fixtures: real Postgres and real Redis, isolated per test session.

With DATABASE_URL / REDIS_URL set (CI's second run), tests use those servers:
a fresh database is created for the session and dropped after, and every Redis
key carries a per-session prefix. Without them, an embedded PostgreSQL and an
embedded Redis start under a temporary directory, exactly as `make run` does.
Several suites can therefore run at once on one machine without touching each
other's data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.settings import Settings
from storage.crypto import generate_key_spec
from storage.db import Database, migrate
from storage.redis import RedisHandle

SESSION_TAG = f"{os.getpid()}_{secrets.token_hex(3)}"


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def data_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="socialops-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
async def server_dsn(data_root: Path) -> AsyncIterator[str]:
    """A DSN for a maintenance database on the server the session uses."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    db = Database(dsn=None, data_dir=data_root)
    await db.open()
    dsn = db.dsn
    await db.close()
    yield dsn


@pytest.fixture(scope="session")
async def pg_dsn(server_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    name = f"socialops_test_{SESSION_TAG}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = _with_database(server_dsn, name)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        await migrate(pool)
    finally:
        await pool.close()
    yield dsn
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def empty_db(server_dsn: str) -> AsyncIterator[str]:
    """A new, empty database for one test (for tests that need the whole database)."""
    name = f"socialops_t_{SESSION_TAG}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _with_database(server_dsn, name)
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def fresh_pool(empty_db: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new, migrated database of its own."""
    pool = await asyncpg.create_pool(empty_db, min_size=1, max_size=4)
    await migrate(pool)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_dsn, min_size=2, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def redis_url(data_root: Path) -> AsyncIterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    handle = RedisHandle(url=None, data_dir=data_root)
    await handle.open()
    yield handle.url
    await handle.close()


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"socialops-test:{SESSION_TAG}:"


@pytest.fixture
async def redis(redis_url: str, redis_prefix: str, data_root: Path) -> AsyncIterator[RedisHandle]:
    """A Redis client whose keys are namespaced to this session (and cleaned after each test)."""
    # A generous socket timeout: production's quarter second is about a healthy Redis, and
    # a CI machine running the suite, Postgres and the fakes on two cores is not that.
    handle = RedisHandle(
        url=redis_url, data_dir=data_root, key_prefix=redis_prefix, socket_timeout=5.0
    )
    await handle.open()
    yield handle
    async for key in handle.client.scan_iter(match=redis_prefix + "*", count=500):
        await handle.client.delete(key)
    await handle.close()


@pytest.fixture
def make_settings(pg_dsn: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Any:
    """Build Settings pointing at the session's database and Redis, with overrides."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": pg_dsn,
            "redis_url": redis_url,
            "redis_key_prefix": redis_prefix,
            "socialops_data_dir": tmp_path / "data",
            "token_encryption_keys": generate_key_spec("test1"),
            "log_format": "text",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build
