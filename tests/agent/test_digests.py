"""Digests: due subscriptions are queued once per local day and posted at most once."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time

from agent.context import AgentConfig, Deps
from agent.digests import deliver_digest, enqueue_due_digests
from agent.ports import MetricsReport
from bot.worker import JobKind
from storage import accounts, digests, identity, queue
from tests.fakes.chatops import FakeOps
from tests.fakes.platforms import directory
from tests.jobs_fixtures import queue_is_empty, run_worker_until

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 10:00 in Paris


async def setup(fresh_pool, redis, cipher):
    ops = FakeOps(allow={"metrics"}, report=MetricsReport(as_of=NOW))
    deps = Deps(
        pool=fresh_pool,
        redis=redis,
        cipher=cipher,
        config=AgentConfig(),
        platforms=directory(configured=ops.platforms),
        ops=ops,
    )
    ident = await identity.resolve(
        fresh_pool, frontend="slack", workspace_external_id="T1", user_external_id="U1"
    )
    async with fresh_pool.acquire() as conn:
        await accounts.upsert_linked(
            conn,
            cipher=cipher,
            workspace_id=ident.workspace_id,
            owner_id=ident.chat_user_id,
            platform="youtube",
            external_id="UC1",
            handle="chan",
            scopes=[],
            token={"access_token": "x"},
            expires_at=None,
        )
    for channel, at, zone in (("a", time(8, 0), "Europe/Paris"), ("b", time(23, 0), "UTC")):
        await digests.upsert(
            fresh_pool,
            workspace_id=ident.workspace_id,
            channel_id=channel,
            local_time=at,
            time_zone=zone,
            created_by=ident.chat_user_id,
        )
    return deps, ops, ident


async def test_due_digest_queued_once_across_replicas_and_posted_once(fresh_pool, redis, cipher):
    deps, ops, _ident = await setup(fresh_pool, redis, cipher)
    posts: list[tuple[str, str, str]] = []

    async def post(ws, channel, text):
        await asyncio.sleep(0.01)
        posts.append((ws.external_id, channel, text))
        return f"ts-{len(posts)}"

    counts = await asyncio.gather(*(enqueue_due_digests(deps, NOW) for _ in range(4)))
    assert sum(counts) == 1 and await enqueue_due_digests(deps, NOW) == 0

    async def deliver(payload):
        await deliver_digest(
            deps,
            post,
            subscription_id=payload["sub"],
            local_date=date.fromisoformat(payload["date"]),
            now=NOW,
        )

    await run_worker_until(
        fresh_pool, {queue.DIGEST: JobKind(deliver)}, lambda: queue_is_empty(fresh_pool)
    )
    assert [(w, c) for w, c, _ in posts] == [("T1", "a")]  # #b is due at 23:00 UTC only
    assert posts[0][2].text().startswith("Daily digest, 2026-11-25")
    assert ops.calls[0][1]["days"] == 1 and ops.calls[0][1]["identity"].user_external_id == "U1"
    row = await fresh_pool.fetchrow("SELECT status, message_ref FROM digest_runs")
    assert (row["status"], row["message_ref"]) == ("posted", "ts-1")


async def test_failed_post_is_retried_but_a_posting_run_is_not(fresh_pool, redis, cipher):
    deps, _, _ident = await setup(fresh_pool, redis, cipher)
    calls = 0

    async def flaky(ws, channel, text):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("chat API down")
        return "ts-ok"

    assert await enqueue_due_digests(deps, NOW) == 1
    sub_a = next(s for s in await digests.list_enabled(fresh_pool) if s.channel_id == "a")
    day = NOW.date()
    try:
        await deliver_digest(deps, flaky, subscription_id=sub_a.id, local_date=day, now=NOW)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the failed post should raise, so the engine retries")
    assert await fresh_pool.fetchval("SELECT status FROM digest_runs") == "failed"
    assert await deliver_digest(deps, flaky, subscription_id=sub_a.id, local_date=day, now=NOW)
    assert calls == 2

    # A run whose worker died mid-post ('posting') may have posted: never posted again.
    sub_b = next(s for s in await digests.list_enabled(fresh_pool) if s.channel_id == "b")
    late = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    await fresh_pool.execute(
        "INSERT INTO digest_runs (subscription_id, local_date, status) VALUES ($1, $2, 'posting')",
        sub_b.id,
        late.date(),
    )
    assert await enqueue_due_digests(deps, late) == 0
    assert not await deliver_digest(
        deps, flaky, subscription_id=sub_b.id, local_date=late.date(), now=late
    )
    assert calls == 2
