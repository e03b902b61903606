"""Parallel digests, bounded: DIGEST_PER_WORKSPACE at once per workspace, and each
channel's posting rate (Slack: about one message a second) shared by every worker."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from typing import Any

import pytest

from agent.digest_content import Digest
from bot.digest_post import ChannelPacer, DigestPoster
from bot.notify import Notifiers
from storage import digests, identity, queue
from storage.digests import Workspace
from storage.ratelimit import Budgets, LimitPolicy
from storage.redis import RedisHandle
from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET, TEAM
from tests.fakes.server import serve_asgi
from tests.fakes.slack import Call, FakeSlack
from tests.jobs.digest_setup import enqueue_now, posts_per_channel, subscribe_channels
from tests.wiring import wait_until, wired

PER_WORKSPACE = 2


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(latency=0.2)
    async with serve_asgi(fake.app) as url:
        fake.base_url = url
        fake.add_team(TEAM, token=BOT_TOKEN)
        yield fake


def most_at_once(calls: list[Call]) -> int:
    """The largest number of these calls the fake was answering at the same moment."""
    edges = sorted([(c.at, 1) for c in calls] + [(c.done, -1) for c in calls])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def test_deliveries_run_in_parallel_but_at_most_the_bound_per_workspace(
    make_settings: Any, empty_db: str, slack: FakeSlack
) -> None:
    settings = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_base": slack.api_base,
        "digest_per_workspace": PER_WORKSPACE,
        "digest_concurrency": 16,
    }
    async with wired(make_settings, empty_db, **settings) as assembly:
        pool = assembly.services.db.pool
        first = await subscribe_channels(pool, TEAM, 8)
        other = await identity.resolve(
            pool, frontend="slack", workspace_external_id="T2", user_external_id="U1"
        )
        second = [f"D{i:06d}" for i in range(8)]
        for channel in second:
            await digests.upsert(
                pool,
                workspace_id=other.workspace_id,
                channel_id=channel,
                local_time=time(0, 0),
                time_zone="UTC",
                created_by=other.chat_user_id,
            )
        assert await assembly.enqueue_digests() == 16
        worker = assembly.build_part("worker")
        await worker.start()
        try:

            async def all_posted() -> bool:
                n = await pool.fetchval("SELECT count(*) FROM digest_runs WHERE status = 'posted'")
                return bool(n == 16)

            await wait_until(all_posted, timeout=120)
        finally:
            await worker.stop(10)
            if assembly.slack is not None:
                await assembly.slack.aclose(5)

    assert posts_per_channel(slack) == dict.fromkeys(first + second, 1)
    posts = slack.calls_of("chat.postMessage")
    for channels in (first, second):
        mine = [c for c in posts if c.args.get("channel") in channels]
        assert 1 <= most_at_once(mine) <= PER_WORKSPACE


async def test_messages_into_one_channel_keep_slacks_pace_across_workers(
    slack: FakeSlack, redis: RedisHandle, make_settings: Any, empty_db: str
) -> None:
    """Two workers (each its own limiter client) post three digests into one channel at
    once: every message waits for the channel's slot; another channel does not wait."""
    policy = LimitPolicy(
        user_messages="3/minute",
        workspace_messages="4/minute",
        user_llm_tokens_per_day=1,
        workspace_llm_tokens_per_day=1,
    )
    settings = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_base": slack.api_base,
    }
    async with wired(make_settings, empty_db, **settings) as assembly:
        adapter = assembly.slack
        assert adapter is not None
        workspace = Workspace(id=1, frontend="slack", external_id=TEAM, name=None)
        posters = [
            DigestPoster(
                slack=adapter,
                notifiers=Notifiers(),
                discord_token=None,
                discord_api_base="http://127.0.0.1:9",
                pacer=ChannelPacer(Budgets(redis=redis, policy=policy, call_timeout=5.0)),
            )
            for _ in range(2)
        ]
        now = datetime.now(UTC)
        try:
            await asyncio.gather(
                posters[0](workspace, "CPACE", Digest("Daily digest", now, notice="one")),
                posters[1](workspace, "CPACE", Digest("Daily digest", now, notice="two")),
                posters[0](workspace, "CPACE", Digest("Daily digest", now, notice="three")),
                posters[1](workspace, "COTHER", Digest("Daily digest", now, notice="elsewhere")),
            )
        finally:
            await adapter.aclose(5)
    calls = slack.calls_of("chat.postMessage")
    into = sorted(c.at for c in calls if c.args["channel"] == "CPACE")
    assert len(into) == 3
    gaps = [b - a for a, b in itertools.pairwise(into)]
    # About a second apart (Redis' window, whatever the network adds); unpaced they
    # would arrive within milliseconds of each other.
    assert min(gaps) > 0.5, gaps
    assert [c.args["channel"] for c in calls].count("COTHER") == 1


async def test_the_sweep_queues_round_robin_across_workspaces(
    fresh_pool: Any, redis: RedisHandle, cipher: Any
) -> None:
    """A big workspace's digests never stand in front of a small one's (queue order)."""
    big = await subscribe_channels(fresh_pool, "TBIG", 5)
    small = await subscribe_channels(fresh_pool, "TSMALL", 1)
    assert await enqueue_now(fresh_pool, redis, cipher) == 6
    rows = await fresh_pool.fetch("SELECT payload FROM pgqueuer ORDER BY id")
    order = [queue.decode(r["payload"])["workspace"] for r in rows]
    big_ws, small_ws = order[0], next(w for w in order if w != order[0])
    assert order[:2] in ([big_ws, small_ws], [small_ws, big_ws])
    assert order.count(big_ws) == len(big) and order.count(small_ws) == len(small)
    assert await enqueue_now(fresh_pool, redis, cipher) == 0  # recorded once
