"""Daily digests reach the Slack channel that asked for them, once per local day."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, time
from typing import Any

from bot.assembly import Assembly
from bot.services import Services
from storage import digests, identity, queue
from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET, TEAM
from tests.fakes.slack import FakeSlack

NOW = datetime(2026, 11, 25, 9, 5, tzinfo=UTC)  # 10:05 in Paris


async def test_due_digest_is_posted_to_slack_once(
    make_settings: Any, fake_slack: FakeSlack
) -> None:
    settings = make_settings(
        slack_signing_secret=SIGNING_SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_api_base=fake_slack.api_base,
    )
    services = Services(settings=settings)
    await services.initialize()
    assembly = Assembly(services)
    try:
        pool = services.db.pool
        # A workspace of our own: the test database is shared with other tests.
        channel = f"C{secrets.token_hex(4).upper()}"
        ident = await identity.resolve(
            pool, frontend="slack", workspace_external_id=TEAM, user_external_id="U1"
        )
        await digests.upsert(
            pool,
            workspace_id=ident.workspace_id,
            channel_id=channel,
            local_time=time(10, 0),
            time_zone="Europe/Paris",
            created_by=ident.chat_user_id,
        )
        sub = next(s for s in await digests.list_enabled(pool) if s.channel_id == channel)
        await assembly.enqueue_digests(NOW)
        await assembly.enqueue_digests(NOW)  # the next sweep (or another replica) adds nothing
        key = f"digest:{sub.id}:2026-11-25"
        [job] = await pool.fetch("SELECT payload FROM pgqueuer WHERE dedupe_key = $1", key)
        payload = queue.decode(job["payload"])
        # The job, run twice (a retry after the engine lost track of it): one post.
        await assembly.digest_job(payload)
        await assembly.digest_job(payload)
        posts = [
            c for c in fake_slack.calls_of("chat.postMessage") if c.args.get("channel") == channel
        ]
        assert len(posts) == 1
        assert "digest" in str(posts[0].args.get("text", "")).lower()
        assert posts[0].token == BOT_TOKEN
        run = await pool.fetchrow(
            "SELECT r.status, r.message_ref FROM digest_runs r JOIN digest_subscriptions s"
            " ON s.id = r.subscription_id WHERE s.channel_id = $1",
            channel,
        )
        assert run["status"] == "posted" and run["message_ref"]
    finally:
        if assembly.slack is not None:
            await assembly.slack.aclose(5)
        await services.shutdown()
