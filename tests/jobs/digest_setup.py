"""Many Slack digest subscriptions on a database of the test's own, all due now."""

from __future__ import annotations

from datetime import UTC, datetime, time

import asyncpg

from agent.context import AgentConfig, Deps
from agent.digests import enqueue_due_digests
from storage import digests, identity
from storage.crypto import TokenCipher
from storage.redis import RedisHandle
from tests.fakes.platforms import directory
from tests.fakes.slack import FakeSlack


def channel_name(i: int) -> str:
    return f"C{i:06d}"


async def subscribe_channels(pool: asyncpg.Pool, team: str, count: int) -> list[str]:
    """`count` channels of one Slack workspace, each with a digest due at 00:00 UTC."""
    who = await identity.resolve(
        pool, frontend="slack", workspace_external_id=team, user_external_id="U1"
    )
    channels = [channel_name(i) for i in range(count)]
    for channel in channels:
        await digests.upsert(
            pool,
            workspace_id=who.workspace_id,
            channel_id=channel,
            local_time=time(0, 0),
            time_zone="UTC",
            created_by=who.chat_user_id,
        )
    return channels


async def enqueue_now(pool: asyncpg.Pool, redis: RedisHandle, cipher: TokenCipher) -> int:
    """What the engine's every-minute schedule does: queue each due digest once."""
    deps = Deps(pool=pool, redis=redis, cipher=cipher, config=AgentConfig(), platforms=directory())
    return await enqueue_due_digests(deps, datetime.now(UTC))


def posts_per_channel(slack: FakeSlack) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in slack.calls_of("chat.postMessage"):
        channel = str(call.args.get("channel"))
        counts[channel] = counts.get(channel, 0) + 1
    return counts
