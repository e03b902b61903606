"""Named leases: one holder per name, all or nothing, taken over once expired or released."""

from __future__ import annotations

import asyncio
import secrets

from storage import leases


def names(*suffixes: str) -> list[str]:
    base = "test:" + secrets.token_hex(4)
    return [f"{base}:{s}" for s in suffixes]


async def test_a_set_is_claimed_all_or_nothing(pool) -> None:
    a, b, c = names("a", "b", "c")
    assert await leases.acquire(pool, [a, b], holder="one", ttl_seconds=30)
    assert not await leases.acquire(pool, [b, c], holder="two", ttl_seconds=30)
    assert await leases.holders(pool, [a, b, c]) == {a: "one", b: "one"}  # no `c` for two
    assert await leases.acquire(pool, [a, b], holder="one", ttl_seconds=30)  # its own again
    assert await leases.acquire(pool, [c], holder="two", ttl_seconds=30)


async def test_a_released_or_expired_lease_is_taken_over_and_the_old_holder_knows(pool) -> None:
    [shard] = names("shard")
    assert await leases.acquire(pool, [shard], holder="one", ttl_seconds=30)
    assert await leases.renew(pool, [shard], holder="one", ttl_seconds=30)
    assert not await leases.renew(pool, [shard], holder="two", ttl_seconds=30)
    await leases.release(pool, [shard], holder="two")  # not its lease: untouched
    assert await leases.holders(pool, [shard]) == {shard: "one"}
    await leases.release(pool, [shard], holder="one")
    assert await leases.acquire(pool, [shard], holder="two", ttl_seconds=30)
    # "two" dies: its lease runs out without renewal.
    await pool.execute(
        "UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = $1", shard
    )
    assert await leases.holders(pool, [shard]) == {}
    assert await leases.acquire(pool, [shard], holder="three", ttl_seconds=30)
    assert not await leases.renew(pool, [shard], holder="two", ttl_seconds=30)


async def test_many_claimers_at_once_get_exactly_one_holder(pool) -> None:
    wanted = names("0", "1", "2")
    overlapping = [wanted, wanted[1:], wanted[:2], wanted[::-1]] * 3
    results = await asyncio.gather(
        *(
            leases.acquire(pool, claim, holder=f"claimer-{i}", ttl_seconds=30)
            for i, claim in enumerate(overlapping)
        )
    )
    # Every claim includes wanted[1]: exactly one claimer wins, and it holds its whole set.
    [winner] = [i for i, ok in enumerate(results) if ok]
    held = await leases.holders(pool, wanted)
    assert held == {name: f"claimer-{winner}" for name in overlapping[winner]}
