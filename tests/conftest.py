"""Shared fixtures: real Postgres and real Redis, isolated per test session.

With DATABASE_URL / REDIS_URL set (CI's second run), tests use those servers:
a fresh database is created for the session and dropped after, and every Redis
key carries a per-session prefix. Without them, an embedded PostgreSQL and an
embedded Redis start under a temporary directory, exactly as `make run` does.
Several suites can therefore run at once on one machine without touching each
other's data.

The storage and job-engine tests (POOLED_PATHS, or marked `pooled`) run twice: directly,
and through PgBouncer in transaction mode (`pg_route` = "pgbouncer"), where `pool`,
`fresh_pool` and `make_settings` reach the database through the pooler as production
does through Supabase's (migrations still go direct, as over DATABASE_DIRECT_URL). A
wire-level spy fails such a test if it sent anything that needs a session
(tests/pgwire_spy.py).
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

from bot import event_loop
from bot.settings import Settings
from storage.crypto import generate_key_spec
from storage.db import Database, migrate
from storage.redis import RedisHandle
from tests.pgbouncer import PgBouncer, forget_pooled, remember_pooled
from tests.pgwire_spy import SessionStateSpy

SESSION_TAG = f"{os.getpid()}_{secrets.token_hex(3)}"


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every test runs on the event loop every socialops process runs on (uvloop)."""
    return {"uvloop": event_loop.new_loop}


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


# The storage and job-engine tests: also run through PgBouncer (besides `pooled` marks).
POOLED_PATHS = (
    "storage",
    "jobs",
    "agent/test_digests.py",
    "agent/test_token_refresh_job.py",
    "agent/test_upload_kill_process.py",
    "bot/test_digest_delivery.py",
    "bot/test_worker_role.py",
)


def _pooled(item: pytest.Item) -> bool:
    if item.get_closest_marker("pooled") is not None:
        return True
    tests_dir = Path(__file__).parent
    return any(Path(str(item.path)).is_relative_to(tests_dir / p) for p in POOLED_PATHS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pg_route" in metafunc.fixturenames and _pooled(metafunc.definition):
        metafunc.parametrize("pg_route", ["direct", "pgbouncer"], indirect=True, scope="session")


@pytest.fixture(scope="session")
def pg_route(request: pytest.FixtureRequest) -> str:
    """How `pool`, `fresh_pool` and `make_settings` reach Postgres: "direct" or "pgbouncer"."""
    return str(getattr(request, "param", "direct"))


class Pooler:
    """PgBouncer (transaction mode) with the session-state spy in front of it."""

    def __init__(self, bouncer: PgBouncer, spy: SessionStateSpy) -> None:
        self.bouncer = bouncer
        self.spy = spy

    def dsn(self, direct_dsn: str) -> str:
        """`direct_dsn`'s database, reached through the spy and PgBouncer."""
        return self.bouncer.dsn(direct_dsn, port=self.spy.port)


@pytest.fixture(scope="session")
def pooler(server_dsn: str) -> Iterator[Pooler]:
    """PgBouncer in transaction mode in front of the session's server (started on first use)."""
    bouncer = PgBouncer(server_dsn)
    bouncer.start()
    spy = SessionStateSpy(upstream_port=bouncer.port)
    spy.start()
    yield Pooler(bouncer, spy)
    spy.close()
    bouncer.cleanup()


@pytest.fixture(autouse=True)
async def _no_session_state_through_the_pooler(
    request: pytest.FixtureRequest,
) -> AsyncIterator[None]:
    """A test run through the pooler fails if anything in it used session state."""
    if "pg_route" not in request.fixturenames or request.getfixturevalue("pg_route") != "pgbouncer":
        yield
        return
    spy = request.getfixturevalue("pooler").spy
    spy.take()
    yield
    found = spy.take()
    assert not found, f"session state through the transaction pooler: {found}"


async def _open_pool(
    dsn: str, route: str, request: pytest.FixtureRequest, **sizes: int
) -> Database:
    """A `Database` on `dsn`, through the pooler (statement cache off) for that route."""
    pooled = route == "pgbouncer"
    routed = request.getfixturevalue("pooler").dsn(dsn) if pooled else dsn
    db = Database(
        dsn=routed, data_dir=Path(tempfile.gettempdir()), transaction_pooler=pooled, **sizes
    )
    await db.open()
    if pooled:
        remember_pooled(db.pool, dsn)
    return db


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
async def fresh_pool(
    empty_db: str, pg_route: str, request: pytest.FixtureRequest
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new, migrated database of its own (migrated directly, like a release)."""
    direct = await asyncpg.create_pool(empty_db, min_size=1, max_size=1)
    try:
        await migrate(direct)
    finally:
        await direct.close()
    db = await _open_pool(empty_db, pg_route, request, min_size=1, max_size=4)
    yield db.pool
    forget_pooled(db.pool)
    await db.close()


@pytest.fixture(scope="session")
async def pool(
    pg_dsn: str, pg_route: str, request: pytest.FixtureRequest
) -> AsyncIterator[asyncpg.Pool]:
    db = await _open_pool(pg_dsn, pg_route, request, min_size=2, max_size=10)
    yield db.pool
    forget_pooled(db.pool)
    await db.close()


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
def make_settings(
    pg_dsn: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    pg_route: str,
    request: pytest.FixtureRequest,
) -> Any:
    """Build Settings pointing at the session's database and Redis, with overrides.

    On the pgbouncer route DATABASE_URL is the pooler and DATABASE_DIRECT_URL the server."""
    route: dict[str, Any] = {"database_url": pg_dsn}
    if pg_route == "pgbouncer":
        route = {
            "database_url": request.getfixturevalue("pooler").dsn(pg_dsn),
            "database_direct_url": pg_dsn,
            "database_pooler": "transaction",
        }

    def build(**overrides: Any) -> Settings:
        # A test that names its own DATABASE_URL gets only the database settings it names.
        values: dict[str, Any] = {
            **(route if "database_url" not in overrides else {}),
            "redis_url": redis_url,
            "redis_key_prefix": redis_prefix,
            "socialops_data_dir": tmp_path / "data",
            "token_encryption_keys": generate_key_spec("test1"),
            "log_format": "text",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build
