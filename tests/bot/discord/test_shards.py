"""Discord at scale: processes split the guilds by shard, and a lease in Postgres keeps
each shard in one process: a second claimer waits, and takes over when the first stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from bot.discord import DiscordPart
from bot.discord.part import DiscordUnavailable
from bot.discord.shards import ShardLease, ShardPlan
from storage import leases
from tests.fakes.discord import FakeDiscord


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        (None, None, ShardPlan()),
        (4, None, ShardPlan(count=4)),
        (4, " 2, 0,2 ", ShardPlan(count=4, ids=(0, 2))),
    ],
)
def test_shard_settings(count: int | None, ids: str | None, expected: ShardPlan) -> None:
    assert ShardPlan.parse(count, ids) == expected


@pytest.mark.parametrize(
    ("count", "ids", "says"),
    [(None, "0", "needs DISCORD_SHARD_COUNT"), (2, "0,x", "comma-separated"), (2, "2", "0 and 1")],
)
def test_bad_shard_settings_say_what_is_wrong(count: int | None, ids: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ShardPlan.parse(count, ids)


def test_each_shard_has_its_own_lease() -> None:
    assert ShardPlan().lease_names == ["discord:shards:all"]
    assert ShardPlan(count=3).lease_names == [f"discord:shard:{i}/3" for i in range(3)]
    assert ShardPlan(count=3, ids=(1,)).describe() == "shards 1 of 3"


@pytest.fixture
async def two_pools(pg_dsn: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    """Two processes' pools (each its own connections) on the session's database."""
    first = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    second = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    yield first, second
    await first.close()
    await second.close()


def sharded_part(
    fake: FakeDiscord, handler: Any, pool: asyncpg.Pool, plan: ShardPlan, holder: str, **lease: Any
) -> DiscordPart:
    return DiscordPart(
        token=fake.token,
        handler=handler,
        api_base=fake.api_base,
        guild_ready_timeout=0.05,
        sync_commands=False,
        shards=plan,
        lease=ShardLease(pool=lambda: pool, plan=plan, holder=holder, retry_seconds=0.1, **lease),
    )


async def test_two_processes_claiming_the_same_shards_one_waits_then_takes_over(
    fake: FakeDiscord, handler: Any, two_pools: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Guilds on both shards of 2 (Discord routes by (id >> 22) % count).
    for n in range(1, 5):
        fake.add_guild(f"Guild {n}", guild_id=str((n << 22) | 7))
    shard_1 = {gid for gid in fake.guilds if (int(gid) >> 22) % 2 == 1}
    assert shard_1 and shard_1 != set(fake.guilds)
    plan = ShardPlan.parse(2, "1")
    pool_a, pool_b = two_pools
    first = sharded_part(fake, handler, pool_a, plan, "process-a")
    second = sharded_part(fake, handler, pool_b, plan, "process-b")

    await first.start()
    await asyncio.wait_for(first.wait_until_ready(), 15)
    assert {str(g.id) for g in first.client.guilds} == shard_1  # its shard's guilds only
    with caplog.at_level(logging.INFO, logger="bot.discord.shards"):
        await second.start()
        async with asyncio.timeout(15):
            while not any("waiting to take over" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.02)
    assert not second.connected  # it tried, found the shard taken, and waits
    assert [i["shard"] for i in fake.identifies] == [[1, 2]]  # one gateway session only
    assert await leases.holders(pool_a, plan.lease_names) == {"discord:shard:1/2": "process-a"}

    await first.stop(5)  # lets go of the lease: the waiting process takes over
    await asyncio.wait_for(second.wait_until_ready(), 15)
    assert [i["shard"] for i in fake.identifies] == [[1, 2], [1, 2]]
    assert {str(g.id) for g in second.client.guilds} == shard_1
    assert await leases.holders(pool_a, plan.lease_names) == {"discord:shard:1/2": "process-b"}
    await second.stop(5)
    assert await leases.holders(pool_a, plan.lease_names) == {}


async def test_a_process_that_loses_its_lease_disconnects(
    fake: FakeDiscord, handler: Any, two_pools: Any
) -> None:
    plan = ShardPlan.parse(2, "0")
    pool_a, _ = two_pools
    part = sharded_part(fake, handler, pool_a, plan, "process-a", ttl_seconds=0.6)
    await part.start()
    await asyncio.wait_for(part.wait_until_ready(), 15)
    # Another process took the shard (say this one was partitioned away and it expired).
    await pool_a.execute(
        "UPDATE leases SET holder = 'process-c' WHERE name = $1", plan.lease_names[0]
    )
    with pytest.raises(DiscordUnavailable, match="lost the Discord shard lease"):
        await asyncio.wait_for(part.wait(), 15)
    assert part.client.is_closed()
    assert await leases.holders(pool_a, plan.lease_names) == {"discord:shard:0/2": "process-c"}
    await part.stop(5)
    await leases.release(pool_a, plan.lease_names, holder="process-c")
