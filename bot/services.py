"""Build every long-lived object from Settings, and own their lifecycle.

`Services` holds the shared resources (database, Redis, cipher, and what later
layers add); `Part`s are the things a process runs (web server, worker, chat
front-ends, shell). `run_parts` is the explicit lifecycle the CLI uses:
initialize -> start parts -> wait for a signal or a part to end -> stop intake
-> let in-flight work finish within the grace period -> shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from typing import Protocol

import httpx

from bot.notify import Notifiers
from bot.settings import Settings
from integrations.capabilities import PlatformCapabilities
from integrations.http import Guards, make_client
from integrations.registry import Platforms, Registry
from storage.crypto import TokenCipher, load_or_create_local_keys, parse_keys
from storage.db import Database, is_transaction_pooler, migrate, migrate_at
from storage.ratelimit import Budgets, LimitPolicy
from storage.redis import RedisHandle

log = logging.getLogger(__name__)


class Part(Protocol):
    """Something a process runs: started once, stopped once."""

    name: str

    async def start(self) -> None:
        """Begin work; return once running (long work goes in tasks)."""

    async def stop(self, grace: float) -> None:
        """Stop taking new work and finish in-flight work within `grace` seconds."""

    async def wait(self) -> None:
        """Return when the part has ended on its own (e.g. the shell's user typed `quit`)."""


class Services:
    """Shared resources of one process, built from Settings."""

    def __init__(self, *, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry or Registry()
        data_dir = settings.data_dir
        dsn = settings.database_url.get_secret_value() if settings.database_url else None
        self.db = Database(
            dsn=dsn,
            data_dir=data_dir,
            max_size=settings.database_pool_size,
            transaction_pooler=dsn is not None
            and is_transaction_pooler(dsn, settings.database_pooler),
        )
        self.redis = RedisHandle(
            url=settings.redis_url.get_secret_value() if settings.redis_url else None,
            data_dir=data_dir,
            key_prefix=settings.redis_key_prefix,
        )
        self.cipher = build_cipher(settings)
        self.http_guards = Guards(
            max_concurrency=settings.http_max_concurrency_per_platform,
            failure_threshold=settings.http_breaker_failure_threshold,
            cooldown=settings.http_breaker_cooldown_seconds,
        )
        # Outbound HTTP: one client per platform, each behind that platform's retries,
        # circuit breaker and concurrency cap, so one slow platform can't starve another.
        self.http_clients: dict[str, httpx.AsyncClient] = {}
        # Every registered platform's capabilities; clients for the configured ones.
        self.platforms: Platforms = self.registry.platforms(settings, self._client_for)
        self.budgets = Budgets(
            redis=self.redis,
            policy=build_limit_policy(settings),
            quotas={cap.name: cap.quota.counters for cap in self.platforms},
            call_timeout=settings.limit_call_timeout_seconds,
        )
        # Front-ends register how to tell a chat user something out of band.
        self.notifiers = Notifiers()
        self._initialized = False

    def _client_for(self, caps: PlatformCapabilities) -> httpx.AsyncClient:
        platform = caps.name
        client = self.http_clients.get(platform)
        if client is None:
            client = make_client(
                platform=platform,
                display=caps.display_name,
                guards=self.http_guards,
                timeout=httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=30.0),
            )
            self.http_clients[platform] = client
        return client

    async def migrate(self) -> list[str]:
        """Apply pending migrations over a session: DATABASE_DIRECT_URL when set, else the
        pool, which must not be a transaction pooler (the migration lock is per session)."""
        direct = self.settings.database_direct_url
        if direct is not None:
            return await migrate_at(direct.get_secret_value())
        if self.db.transaction_pooler:
            raise RuntimeError(
                "DATABASE_URL goes through a transaction pooler; migrations need a session: "
                "set DATABASE_DIRECT_URL (Supabase: the session-mode URL, port 5432)"
            )
        return await migrate(self.db.pool)

    async def initialize(self, *, run_migrations: bool | None = None) -> None:
        """Open pools (starting embedded servers if needed) and migrate."""
        if self._initialized:
            return
        await self.db.open()
        try:
            if self.settings.run_migrations_on_start if run_migrations is None else run_migrations:
                applied = await self.migrate()
                if applied:
                    log.info("migrations applied", extra={"count": len(applied)})
            await self.redis.open()
        except BaseException:
            await self.db.close()
            raise
        self._initialized = True

    async def shutdown(self) -> None:
        """Close everything initialize() opened; embedded servers stop together."""

        async def database() -> None:
            await self.db.close()
            await self.db.stop_embedded()

        await asyncio.gather(self.redis.close(), database())
        for client in self.http_clients.values():
            await client.aclose()
        self._initialized = False


def build_cipher(settings: Settings) -> TokenCipher:
    if settings.token_encryption_keys is not None:
        return TokenCipher(parse_keys(settings.token_encryption_keys.get_secret_value()))
    return TokenCipher(load_or_create_local_keys(settings.data_dir))


def build_limit_policy(settings: Settings) -> LimitPolicy:
    """Chat and model limits, from settings (platform quotas come from their plug-ins)."""
    return LimitPolicy(
        user_messages=settings.limit_user_messages,
        workspace_messages=settings.limit_workspace_messages,
        user_llm_tokens_per_day=settings.limit_user_llm_tokens_per_day,
        workspace_llm_tokens_per_day=settings.limit_workspace_llm_tokens_per_day,
    )


def freeze_startup_heap() -> None:
    """Take what startup built (modules, settings, clients, the agent) out of the
    garbage collector's walks: it lives as long as the process and is never garbage.

    Unfrozen, each full collection walks all of it (0.1 to 0.3 s with the model and
    agent libraries loaded), and anything that keeps objects a little longer (tracing's
    spans waiting for export) makes full collections more frequent: on
    bench/tracing.py most of tracing's cost was those collections.
    """
    gc.collect()
    gc.freeze()


async def run_parts(services: Services, parts: list[Part]) -> int:
    """Run parts until SIGTERM/SIGINT or until one of them ends; return an exit code."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop_requested.set)

    await services.initialize()
    started: list[Part] = []
    exit_code = 0
    try:
        for part in parts:
            await part.start()
            started.append(part)
            log.info("started", extra={"part": part.name})
        freeze_startup_heap()
        waiters = [asyncio.create_task(p.wait(), name=f"wait:{p.name}") for p in started]
        stopper = asyncio.create_task(stop_requested.wait(), name="wait:signal")
        done, _ = await asyncio.wait([*waiters, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in (*waiters, stopper):
            if task not in done:
                task.cancel()
        await asyncio.gather(*waiters, stopper, return_exceptions=True)
        for task in done:
            if task is not stopper and task.exception() is not None:
                log.error("part failed", exc_info=task.exception())
                exit_code = 1
        log.info("stopping", extra={"reason": "signal" if stopper in done else "part ended"})
    finally:
        grace = services.settings.shutdown_grace_seconds
        for part in reversed(started):
            try:
                await asyncio.wait_for(part.stop(grace), timeout=grace + 2)
            except Exception:
                log.exception("part did not stop cleanly", extra={"part": part.name})
        await services.shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return exit_code
