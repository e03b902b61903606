"""A digest end to end over real parts: the YouTube plug-in against the fake Google,
the stored days in Postgres, and the post through the fake Slack's upload API."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from agent.digests import build_digest
from bot.digest_chart import render_png
from bot.slack.digest import post_digest
from storage import digests
from tests.chat_fixtures import ops_for
from tests.fakes.server import serve_asgi
from tests.fakes.slack import FakeSlack


async def test_digest_from_the_youtube_fake_posted_with_its_chart_to_the_slack_fake(
    deps, google, identity, link_account, pool
):
    account, channel, _ = await link_account(identity)
    for i in range(5):
        google.add_video(channel, title=f"Clip {i}", views=100 * (i + 1))
    ops = ops_for(deps)
    deps = replace(deps, ops=ops)
    # Someone read two weeks of figures earlier: every day of them is kept.
    await ops.metrics(identity, days=14)
    sub = await digests.upsert(
        pool,
        workspace_id=identity.workspace_id,
        channel_id="C7",
        local_time=time(8, 0),
        time_zone="UTC",
        created_by=identity.chat_user_id,
    )
    workspace = await digests.get_workspace(pool, identity.workspace_id)
    assert workspace is not None

    digest = await build_digest(deps, workspace, sub, now=datetime.now(UTC))

    [section] = digest.accounts
    assert section.ref == account.ref and not digest.first
    assert section.compared_with == section.day - timedelta(days=1)
    assert all(c.previous is not None for c in section.changes)
    [line] = digest.chart
    assert len(line.points) == 14 and line.points[-1][0] == section.day
    assert [p.title for p in digest.top_posts] == ["Clip 4", "Clip 3", "Clip 2"]
    assert all(
        p.thumbnail_url and p.thumbnail_url.endswith("mqdefault.jpg") for p in digest.top_posts
    )

    slack = FakeSlack()
    async with serve_asgi(slack.app) as url:
        slack.base_url = url
        slack.add_team("T1", token="xoxb-digest")
        client = AsyncWebClient(token="xoxb-digest", base_url=slack.api_base)
        ref = await post_digest(client, "C7", digest)
    [(channel_id, [file], blocks)] = slack.shared_uploads
    assert channel_id == "C7" and ref.startswith("C7:")
    assert slack.files[file["id"]][1] == render_png(digest.chart, digest.chart_days)
    assert blocks is not None and blocks[0]["text"]["text"] == digest.title
    accessories = [b["accessory"]["image_url"] for b in blocks if "accessory" in b]
    assert accessories == [p.thumbnail_url for p in digest.top_posts]
