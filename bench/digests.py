"""Daily digests as parallel jobs vs the naive sweep, and a job's enqueue-to-start latency.

Run from the repo root: `python bench/digests.py [--subscriptions 100,1000]` (each count
in turn, on a database of its own; the scaling row is the wall time at each). Starts the
servers named by `DATABASE_URL` / `REDIS_URL` (a fresh database of its own), else
embedded ones, and fake Google and Slack on loopback that answer every API call
after 50 ms.

* **Ours**: 1,000 subscriptions over 1,000 Slack channels (100 workspaces of 10), each
  with one member whose YouTube channel has 10 recent videos, delivered by two
  `socialops worker` processes on the job engine with the production settings
  (DIGEST_PER_WORKSPACE, each channel's posting pace) except DIGEST_CONCURRENCY, set
  to 32: the default 16 suits one worker of 20 slots (leaving room for uploads), two
  workers have 40. Wall time from the sweep's enqueue to the last run `posted`.
* **Anchor, the naive way, same run**: one digest at a time, and one statistics call
  per video instead of one per 50. It is measured over the first 20 digests and scaled
  to all of them (×N/20), since running it whole would take minutes at 50 ms a call.
* **API calls per digest** (Google and Slack) and **YouTube Data API units per
  account** (every list call costs 1 unit; Analytics reports are another quota),
  against the target ⌈N/50⌉ + 1 for N recent videos.
* **Enqueue-to-start latency** on an idle worker (production WorkerPart settings):
  p50/p99 of 50 jobs enqueued one at a time, against what polling alone would give
  (a job waits for the next poll, uniformly within the 2 s dequeue timeout: computed,
  not measured, since the engine cannot be run without LISTEN/NOTIFY).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.context import AgentConfig, Deps  # noqa: E402
from agent.digests import enqueue_due_digests  # noqa: E402
from bench.results import figure, record  # noqa: E402
from bot import event_loop  # noqa: E402
from bot.worker import JobKind, WorkerPart  # noqa: E402
from integrations.base import AccountProfile, TokenSet  # noqa: E402
from integrations.http import Guards, make_client  # noqa: E402
from integrations.youtube.plugin import PLUGIN as YOUTUBE  # noqa: E402
from storage import digests, identity, queue  # noqa: E402
from storage.crypto import TokenCipher, generate_key_spec, parse_keys  # noqa: E402
from storage.db import Database, migrate  # noqa: E402
from storage.redis import RedisHandle  # noqa: E402
from tests.fakes.google import FakeGoogle, youtube_settings  # noqa: E402
from tests.fakes.google_env import link_channel  # noqa: E402
from tests.fakes.platforms import build, directory  # noqa: E402
from tests.fakes.server import serve_asgi  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

LATENCY = 0.05
VIDEOS = 10  # recent videos per account (the digest's recent-posts limit)
PER_WORKSPACE_CHANNELS = 10
WORKERS = 2
DIGEST_CONCURRENCY = 32  # two workers' 40 slots, 8 left for uploads
NAIVE_SAMPLE = 20
LATENCY_JOBS = 50
BOT_TOKEN = "xoxb-bench"
TEAM = "TBENCH"


async def fresh_database(tmp: Path) -> tuple[str, Database | None, str | None]:
    """(dsn, embedded server to stop, admin dsn to drop the database with)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        db = Database(dsn=None, data_dir=tmp)
        await db.open()
        return db.dsn, db, None
    name = f"socialops_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(url)._replace(path="/" + name)), None, url


async def seed(
    pool: asyncpg.Pool, google: FakeGoogle, cipher: TokenCipher, subscriptions: int
) -> list[tuple[Any, TokenSet]]:
    """Workspaces of 10 channels; each channel's digest has one member with one account."""
    owned: list[tuple[Any, TokenSet]] = []
    for i in range(subscriptions):
        team = f"T{i // PER_WORKSPACE_CHANNELS:04d}"
        who = await identity.resolve(
            pool, frontend="slack", workspace_external_id=team, user_external_id=f"U{i:05d}"
        )
        channel = google.add_channel(f"Creator {i}")
        for v in range(VIDEOS):
            google.add_video(channel, title=f"video {v}", views=100 + v)
        _, _, raw = await link_channel(pool, cipher, google, who, channel, expires_in=24 * 3600)
        await digests.upsert(
            pool,
            workspace_id=who.workspace_id,
            channel_id=f"C{i:06d}",
            local_time=dtime(0, 0),
            time_zone="UTC",
            created_by=who.chat_user_id,
        )
        profile = AccountProfile(
            external_id=channel.id, handle=channel.custom_url, display_name=channel.title
        )
        owned.append((profile, TokenSet(access_token=raw["access_token"])))
    return owned


def worker_env(dsn: str, redis_url: str, keys: str, google: FakeGoogle, slack: FakeSlack) -> Any:
    base = google.base
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEYS": keys,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "bench-signing-secret",
        "SLACK_API_BASE": slack.api_base,
        "GOOGLE_CLIENT_ID": google.client_id,
        "GOOGLE_CLIENT_SECRET": google.client_secret,
        "GOOGLE_AUTH_URL": f"{base}/o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URL": f"{base}/token",
        "GOOGLE_REVOKE_URL": f"{base}/revoke",
        "YOUTUBE_API_BASE": f"{base}/youtube/v3",
        "YOUTUBE_UPLOAD_BASE": f"{base}/upload",
        "YOUTUBE_ANALYTICS_BASE": f"{base}/v2",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        "DIGEST_CONCURRENCY": str(DIGEST_CONCURRENCY),
    }


async def listening(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query ILIKE 'listen %'"
    )
    return count


async def ours(
    pool: asyncpg.Pool, redis: RedisHandle, cipher: TokenCipher, env: Any, subscriptions: int
) -> float:
    """Two worker processes deliver every due digest; seconds from enqueue to the last."""
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "worker",
            cwd=str(ROOT),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        for _ in range(WORKERS)
    ]
    try:
        deadline = time.monotonic() + 120
        while await listening(pool) < WORKERS:  # both engines are up and listening
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            await asyncio.sleep(0.1)
        deps = Deps(
            pool=pool, redis=redis, cipher=cipher, config=AgentConfig(), platforms=directory()
        )
        started = time.perf_counter()
        queued = await enqueue_due_digests(deps, datetime.now(UTC))
        assert queued == subscriptions, queued
        while True:
            posted = await pool.fetchval("SELECT count(*) FROM digest_runs WHERE status='posted'")
            if posted == subscriptions:
                return time.perf_counter() - started
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"only {posted} of {subscriptions} digests after 10 minutes")
            await asyncio.sleep(0.05)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await worker.wait()


async def naive(owned: list[tuple[Any, TokenSet]], google: FakeGoogle, slack: FakeSlack) -> float:
    """One digest at a time, one statistics call per video; seconds for NAIVE_SAMPLE."""
    async with (
        make_client(platform="youtube", guards=Guards(), timeout=30) as http,
        httpx.AsyncClient(timeout=30) as chat,
    ):
        platform = build(YOUTUBE, http, **youtube_settings(google.base, google))
        end = datetime.now(UTC).date() - timedelta(days=1)
        started = time.perf_counter()
        for i, (profile, token) in enumerate(owned[:NAIVE_SAMPLE]):
            recent = await platform.recent_posts(token, profile, limit=VIDEOS)
            for post in recent:
                await platform.post_metrics(token, [post.post_id])
            await platform.account_metrics(token, profile, start=end, end=end)
            response = await chat.post(
                f"{slack.api_base}chat.postMessage",
                headers={"Authorization": f"Bearer {BOT_TOKEN}"},
                json={"channel": f"C{i:06d}", "text": "Daily digest"},
            )
            response.raise_for_status()
        return time.perf_counter() - started


async def enqueue_latency(pool: asyncpg.Pool) -> list[float]:
    """Seconds from enqueue to the handler starting, one job at a time, idle worker."""
    started: dict[int, float] = {}
    arrived = asyncio.Event()

    async def handler(payload: dict[str, Any]) -> None:
        started[int(payload["i"])] = time.perf_counter()
        arrived.set()

    part = WorkerPart(pool=lambda: pool, kinds={queue.PURGE: JobKind(handler)}, triggers=[])
    await part.start()
    try:
        while await listening(pool) < 1:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        waits = []
        for i in range(LATENCY_JOBS):
            arrived.clear()
            async with pool.acquire() as conn:
                sent = time.perf_counter()
                await queue.enqueue(conn, queue.PURGE, {"i": i}, dedupe_key=f"bench:{i}")
            await asyncio.wait_for(arrived.wait(), 30)
            waits.append(started[i] - sent)
            await asyncio.sleep(0.05)  # idle again before the next one
        return waits
    finally:
        await part.stop(5)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)]


async def main(counts: list[int]) -> bool:
    """Every count in turn; the largest's run gives the per-digest and latency figures."""
    rows: list[dict[str, Any]] = []
    for subscriptions in sorted(counts):
        rows += await measure(subscriptions, detail=subscriptions == max(counts))
    return record("digests", rows)


async def measure(subscriptions: int, *, detail: bool) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="socialops-bench-digests-"))
    embedded: Database | None = None
    admin: str | None = None
    redis = RedisHandle(url=os.environ.get("REDIS_URL"), data_dir=tmp, key_prefix="bench-dg:")
    try:
        dsn, embedded, admin = await fresh_database(tmp)
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
        await migrate(pool)
        await redis.open()
        keys = generate_key_spec("bench")
        cipher = TokenCipher(parse_keys(keys))
        google, slack = FakeGoogle(), FakeSlack()
        google.latency = slack.latency = LATENCY
        async with serve_asgi(google) as gbase, serve_asgi(slack.app) as sbase:
            google.base, slack.base_url = gbase, sbase
            slack.add_team(TEAM, token=BOT_TOKEN)
            print(f"seeding {subscriptions} subscriptions, accounts and channels…", flush=True)
            owned = await seed(pool, google, cipher, subscriptions)
            google.calls.clear()
            env = worker_env(dsn, redis.url, keys, google, slack)
            env["REDIS_KEY_PREFIX"] = "bench-dg:"
            wall = await ours(pool, redis, cipher, env, subscriptions)
            data_calls = sum(1 for _, path, _ in google.calls if "/youtube/v3/" in path)
            # A digest with its chart is posted by a file upload (the upload URL, then the
            # completion that shares it with its blocks), one without by chat.postMessage.
            posting = (
                "chat.postMessage",
                "files.getUploadURLExternal",
                "files.completeUploadExternal",
            )
            posted_by = {method: len(slack.calls_of(method)) for method in posting}
            posts = posted_by["chat.postMessage"] + posted_by["files.completeUploadExternal"]
            our_calls = (len(google.calls) + sum(posted_by.values())) / subscriptions
            our_units = data_calls / subscriptions
            assert posts == subscriptions, posts

            google.calls.clear()
            slack.calls.clear()
            sample = await naive(owned, google, slack)
            naive_wall = sample * subscriptions / NAIVE_SAMPLE
            naive_calls = (len(google.calls) + len(slack.calls)) / NAIVE_SAMPLE
            naive_units = (
                sum(1 for _, path, _ in google.calls if "/youtube/v3/" in path) / NAIVE_SAMPLE
            )
        await pool.execute("DELETE FROM pgqueuer")
        waits = await enqueue_latency(pool) if detail else []
        await pool.close()
    finally:
        await redis.close()
        if embedded is not None:
            await embedded.close()
        if admin is not None:
            conn = await asyncpg.connect(admin)
            try:
                await conn.execute(
                    f'DROP DATABASE IF EXISTS "{urlsplit(dsn).path[1:]}" WITH (FORCE)'
                )
            finally:
                await conn.close()
        shutil.rmtree(tmp, ignore_errors=True)

    unit_target = math.ceil(VIDEOS / 50) + 1
    print(
        f"\n{subscriptions} digests, {WORKERS} workers, fakes at {LATENCY * 1000:.0f} ms a call\n"
        f"  ours:  {wall:7.1f} s   {our_calls:5.1f} API calls/digest   "
        f"{our_units:4.1f} YouTube units/account\n"
        f"  naive: {naive_wall:7.1f} s   {naive_calls:5.1f} API calls/digest   "
        f"{naive_units:4.1f} YouTube units/account   "
        f"({NAIVE_SAMPLE} digests measured: {sample:.2f} s, ×{subscriptions / NAIVE_SAMPLE:g})",
        flush=True,
    )
    anchor = f"naive: one call per post, one digest at a time ({NAIVE_SAMPLE} measured, scaled)"
    name = (
        f"{subscriptions} digests over {subscriptions} channels, {WORKERS} workers,"
        f" 50 ms fakes: wall time"
    )
    if not detail:  # a scaling row beside the target's run
        return [figure(name, wall, "s", anchor=anchor, anchor_value=naive_wall)]
    scaling = figure(
        name, wall, "s", anchor=anchor, anchor_value=naive_wall, target="< 60 s", met=wall < 60
    )
    p50, p99 = statistics.median(waits), percentile(waits, 0.99)
    poll = 2.0  # WorkerPart's dequeue timeout
    print(
        f"  enqueue-to-start on an idle worker: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        f" (polling alone: p50 {poll / 2 * 1000:.0f} ms, p99 {poll * 0.99 * 1000:.0f} ms)",
        flush=True,
    )
    return [
        scaling,
        figure(
            "API calls per digest (Google + Slack)",
            our_calls,
            "calls",
            anchor=anchor,
            anchor_value=naive_calls,
        ),
        figure(
            f"YouTube Data API units per account ({VIDEOS} recent videos)",
            our_units,
            "units",
            anchor=anchor,
            anchor_value=naive_units,
            target=f"<= ceil(N/50) + 1 = {unit_target}",
            met=our_units <= unit_target,
        ),
        figure(
            "enqueue-to-start latency p50, idle worker (LISTEN/NOTIFY)",
            p50 * 1000,
            "ms",
            anchor="polling every 2 s alone (computed)",
            anchor_value=poll / 2 * 1000,
            target="< 200 ms",
            met=p50 < 0.2,
        ),
        figure(
            "enqueue-to-start latency p99, idle worker (LISTEN/NOTIFY)",
            p99 * 1000,
            "ms",
            anchor="polling every 2 s alone (computed)",
            anchor_value=poll * 0.99 * 1000,
            target="< 200 ms",
            met=p99 < 0.2,
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subscriptions",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[100, 1000],
        help="comma-separated counts, each run in turn (default 100,1000)",
    )
    args = parser.parse_args()
    raise SystemExit(0 if event_loop.run(main(args.subscriptions)) else 1)
