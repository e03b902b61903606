"""SIGTERM to a `socialops worker` process mid-digest-sweep; another worker finishes it.

Two real worker processes (the CLI, as the Procfile runs it) on the real engine,
against a fake Slack on loopback that answers each call slowly. The first worker
is stopped with SIGTERM while deliveries are in flight: it takes no new job, lets
the running ones post and record, and exits 0. The second delivers the rest. Every
channel gets exactly one digest and no run or job is left claimed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage.crypto import TokenCipher
from storage.db import migrate
from storage.redis import RedisHandle
from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET, TEAM
from tests.fakes.server import serve_asgi
from tests.fakes.slack import FakeSlack
from tests.jobs.digest_setup import enqueue_now, posts_per_channel, subscribe_channels
from tests.wiring import wait_until

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = 60


@pytest.fixture
async def slow_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(latency=0.25)
    async with serve_asgi(fake.app) as url:
        fake.base_url = url
        fake.add_team(TEAM, token=BOT_TOKEN)
        yield fake


@pytest.fixture
async def db(empty_db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(empty_db, min_size=1, max_size=4)
    await migrate(pool)
    yield pool
    await pool.close()


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "worker",
        cwd=str(ROOT),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def runs_by_status(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM digest_runs GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def test_sigterm_mid_sweep_every_channel_gets_one_digest(
    db: asyncpg.Pool,
    empty_db: str,
    slow_slack: FakeSlack,
    redis: RedisHandle,
    redis_url: str,
    redis_prefix: str,
    cipher_spec: str,
    cipher: TokenCipher,
    tmp_path: Path,
) -> None:
    channels = await subscribe_channels(db, TEAM, CHANNELS)
    assert await enqueue_now(db, redis, cipher) == CHANNELS
    env: dict[str, Any] = {
        **os.environ,
        "DATABASE_URL": empty_db,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"{redis_prefix}sigterm:",
        "TOKEN_ENCRYPTION_KEYS": cipher_spec,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE": slow_slack.api_base,
        "SOCIALOPS_DATA_DIR": str(tmp_path / "data"),
        "JOB_HEARTBEAT_SECONDS": "1",
        "SHUTDOWN_GRACE_SECONDS": "15",
        "LOG_FORMAT": "text",
    }
    first = await start_worker(env)
    try:

        async def some_posted() -> bool:
            return len(slow_slack.calls_of("chat.postMessage")) >= 5

        await wait_until(some_posted, timeout=60)
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 30) == 0  # stopped, not killed
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    # What was running finished: nothing is left half-posted by the stopped worker.
    after_stop = await runs_by_status(db)
    assert "posting" not in after_stop, after_stop
    assert after_stop.get("posted", 0) < CHANNELS, after_stop  # the sweep was cut short

    second = await start_worker(env)
    try:

        async def all_posted() -> bool:
            return (await runs_by_status(db)).get("posted", 0) == CHANNELS

        await wait_until(all_posted, timeout=90)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()

    assert posts_per_channel(slow_slack) == dict.fromkeys(channels, 1)
    assert await runs_by_status(db) == {"posted": CHANNELS}
    # No job is left queued or claimed by a worker that went away.
    assert await db.fetchval("SELECT count(*) FROM pgqueuer WHERE entrypoint = 'digest'") == 0
