"""Leased slots on Redis (`Budgets.claim_slot`): at most N holders of a key across replicas."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage.ratelimit import Budgets, LimitPolicy
from storage.redis import RedisHandle

POLICY = LimitPolicy(
    user_messages="3/minute",
    workspace_messages="4/minute",
    user_llm_tokens_per_day=100,
    workspace_llm_tokens_per_day=150,
)


async def test_at_most_limit_holders_across_replicas_and_a_release_frees_one(
    redis: RedisHandle,
) -> None:
    one, two = (Budgets(redis=redis, policy=POLICY, call_timeout=5.0) for _ in range(2))
    first = await one.claim_slot("w1", limit=2, ttl=60)
    second = await two.claim_slot("w1", limit=2, ttl=60)
    third = await one.claim_slot("w1", limit=2, ttl=60)
    assert first.granted and second.granted and first.token != second.token
    assert not third.granted and third.token is None and 0 < third.retry_after <= 60
    assert (await two.claim_slot("w2", limit=2, ttl=60)).granted  # another key, its own slots
    await two.release_slot(second)
    fourth = await one.claim_slot("w1", limit=2, ttl=60)
    assert fourth.granted
    await one.release_slot(third)  # a refused claim holds nothing: releasing it frees nothing
    assert not (await one.claim_slot("w1", limit=2, ttl=60)).granted


async def test_a_holder_that_never_releases_loses_its_slot_when_the_lease_ends(
    redis: RedisHandle,
) -> None:
    budgets = Budgets(redis=redis, policy=POLICY, call_timeout=5.0)
    held = await budgets.claim_slot("dead-worker", limit=1, ttl=0.3)  # never released
    assert held.granted
    refused = await budgets.claim_slot("dead-worker", limit=1, ttl=0.3)
    assert not refused.granted
    await asyncio.sleep(refused.retry_after + 0.05)
    assert (await budgets.claim_slot("dead-worker", limit=1, ttl=0.3)).granted


async def test_redis_down_grants_the_slot_with_nothing_to_release(tmp_path: Path) -> None:
    dead = RedisHandle(url="redis://127.0.0.1:1/0", data_dir=tmp_path)
    await dead.open()
    try:
        budgets = Budgets(redis=dead, policy=POLICY)
        claims = [await budgets.claim_slot("w1", limit=1, ttl=60) for _ in range(3)]
        assert all(c.granted and c.token is None for c in claims)  # bounds fail open
        await budgets.release_slot(claims[0])
        assert budgets.redis_down
    finally:
        await dead.close()
