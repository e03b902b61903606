"""Which Discord shards this process runs, and the lease that keeps each shard in one process.

Discord sends a guild's events to shard `(guild_id >> 22) % shard_count`. With
DISCORD_SHARD_COUNT (and DISCORD_SHARD_IDS, the ones this process runs; all of them by
default) several `discord` processes split the guilds. Before connecting, a process
claims one lease per shard in Postgres (`storage.leases`), all or none: a shard running
in two processes would receive, and answer, every event twice. A process that finds a
shard taken waits, retrying, and takes over when the holder stops (it lets go) or dies
(its lease expires); one that loses its lease disconnects at once.

Without DISCORD_SHARD_COUNT one process runs every shard Discord recommends, under a
single "all shards" lease. Every `discord` process of a deployment uses the same
DISCORD_SHARD_COUNT (or none), so that their leases name the same shards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from storage import leases

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0


class LeaseLost(RuntimeError):
    """This process no longer holds its shards' lease (another may run them now)."""


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """The shards this process runs: `ids` of `count`, or (count None) all of them."""

    count: int | None = None
    ids: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, count: int | None, ids: str | None) -> ShardPlan:
        """From DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS ("0,2"); ValueError says what's wrong."""
        text = (ids or "").strip()
        if not text:
            return cls(count=count)
        if count is None:
            raise ValueError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (how many in all)")
        try:
            chosen = sorted({int(part) for part in text.split(",") if part.strip()})
        except ValueError:
            raise ValueError(
                f"DISCORD_SHARD_IDS must be comma-separated numbers, like 0,1 (got {text[:40]!r})"
            ) from None
        if not chosen or chosen[0] < 0 or chosen[-1] >= count:
            raise ValueError(f"DISCORD_SHARD_IDS must be between 0 and {count - 1}")
        return cls(count=count, ids=tuple(chosen))

    @property
    def shard_ids(self) -> list[int] | None:
        """For discord.py: None runs every shard of `count`."""
        return list(self.ids) if self.ids is not None else None

    @property
    def lease_names(self) -> list[str]:
        if self.count is None:
            return ["discord:shards:all"]
        chosen = self.ids if self.ids is not None else range(self.count)
        return [f"discord:shard:{i}/{self.count}" for i in chosen]

    def describe(self) -> str:
        if self.count is None:
            return "all shards"
        chosen = self.ids if self.ids is not None else range(self.count)
        return f"shards {','.join(str(i) for i in chosen)} of {self.count}"


class ShardLease:
    """Claims, keeps and lets go of the leases on a `ShardPlan`'s shards."""

    def __init__(
        self,
        *,
        pool: Callable[[], asyncpg.Pool],
        plan: ShardPlan,
        ttl_seconds: float = LEASE_SECONDS,
        retry_seconds: float | None = None,
        holder: str | None = None,
    ) -> None:
        self._pool = pool
        self.plan = plan
        self._ttl = ttl_seconds
        self._retry = retry_seconds if retry_seconds is not None else ttl_seconds / 3
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    async def wait_acquired(self) -> None:
        """Return once this process holds every shard of the plan, retrying until then."""
        names = self.plan.lease_names
        said = False
        while not await leases.acquire(
            self._pool(), names, holder=self.holder, ttl_seconds=self._ttl
        ):
            if not said:
                log.info(
                    "discord shards are run by another process; waiting to take over",
                    extra={"shards": self.plan.describe()},
                )
                said = True
            await asyncio.sleep(self._retry)
        log.info("discord shard lease acquired", extra={"shards": self.plan.describe()})

    async def keep(self) -> None:
        """Renew the lease until it is lost (then raise LeaseLost); runs until cancelled.

        A renewal that fails on a database error is retried; once the lease has run out
        without one, it is as good as lost (another process may have taken over).
        """
        names = self.plan.lease_names
        valid_until = time.monotonic() + self._ttl
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                held = await leases.renew(
                    self._pool(), names, holder=self.holder, ttl_seconds=self._ttl
                )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("could not renew the discord shard lease", extra={"error": repr(exc)})
                if time.monotonic() >= valid_until:
                    raise LeaseLost(
                        "the shard lease ran out while the database was unreachable"
                    ) from None
                continue
            if not held:
                raise LeaseLost("another process holds the shard lease now")
            valid_until = time.monotonic() + self._ttl

    async def release(self) -> None:
        """Let go at once, so a waiting process takes over without waiting for the expiry."""
        try:
            await leases.release(self._pool(), self.plan.lease_names, holder=self.holder)
        except (OSError, asyncpg.PostgresError, RuntimeError) as exc:
            log.warning("could not release the discord shard lease", extra={"error": repr(exc)})
