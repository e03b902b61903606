"""3 workers × 500 subscriptions: exactly 500 digest posts, one per channel.

Three replicas, each as `socialops worker` builds it (its own Services, pool, Slack
client and worker part on the engine), share one database and one fake Slack. Each
replica's schedule may enqueue the sweep too; the engine hands each delivery to
one of them, and the fake counts chat.postMessage per channel.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.assembly import Assembly
from storage.redis import RedisHandle
from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET, TEAM
from tests.fakes.server import serve_asgi
from tests.fakes.slack import FakeSlack
from tests.jobs.digest_setup import enqueue_now, posts_per_channel, subscribe_channels
from tests.wiring import wait_until, wired

SUBSCRIPTIONS = 500
REPLICAS = 3


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(latency=0.01)
    async with serve_asgi(fake.app) as url:
        fake.base_url = url
        fake.add_team(TEAM, token=BOT_TOKEN)
        yield fake


async def test_three_workers_deliver_500_digests_exactly_once(
    make_settings: Any, empty_db: str, slack: FakeSlack, redis: RedisHandle
) -> None:
    settings = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_base": slack.api_base,
        "job_heartbeat_seconds": 2.0,
    }
    async with contextlib.AsyncExitStack() as stack:
        scope = secrets.token_hex(4)  # one deployment: the replicas share their limits
        replicas: list[Assembly] = [
            await stack.enter_async_context(
                wired(make_settings, empty_db, redis_scope=scope, **settings)
            )
            for _ in range(REPLICAS)
        ]
        pool = replicas[0].services.db.pool
        channels = await subscribe_channels(pool, TEAM, SUBSCRIPTIONS)
        # Every replica's sweep runs; together they queue each digest once.
        queued = [await replica.enqueue_digests() for replica in replicas]
        assert sum(queued) == SUBSCRIPTIONS and queued[1:] == [0] * (REPLICAS - 1)
        assert await enqueue_now(pool, replicas[0].services.redis, replicas[0].services.cipher) == 0
        workers = [replica.build_part("worker") for replica in replicas]
        for worker in workers:
            await worker.start()
        try:

            async def all_posted() -> bool:
                posted = await pool.fetchval(
                    "SELECT count(*) FROM digest_runs WHERE status = 'posted'"
                )
                return bool(posted == SUBSCRIPTIONS)

            await wait_until(all_posted, timeout=240)
        finally:
            for worker in workers:
                await worker.stop(10)
            for replica in replicas:
                if replica.slack is not None:
                    await replica.slack.aclose(5)

        assert len(slack.calls_of("chat.postMessage")) == SUBSCRIPTIONS
        assert posts_per_channel(slack) == dict.fromkeys(channels, 1)
        assert await pool.fetchval("SELECT count(*) FROM pgqueuer") == 0
