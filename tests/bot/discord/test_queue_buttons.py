"""Discord with the real conversation core: `/social queue` answers privately with an
embed per post and a row of "Cancel"/"Reschedule" buttons; a click runs the button's
command as the clicker (refused for someone else, through approval for the owner)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from agent.layout import Layout, Section
from agent.post_actions import post_actions
from bot.core.service import ChatOpsService
from bot.discord.part import DiscordPart
from storage import job_runs
from tests.bot.discord.test_interactions import EPHEMERAL, click, followups, social
from tests.bot.scheduled import scheduled_post
from tests.fakes.chatops import FakeOps
from tests.fakes.discord import FakeDiscord


@pytest.fixture
async def wired(fake: FakeDiscord, make_deps: Any) -> AsyncIterator[DiscordPart]:
    core = ChatOpsService(deps=make_deps(ops=FakeOps()))
    running = DiscordPart(
        token=fake.token, handler=core, api_base=fake.api_base, guild_ready_timeout=0.05
    )
    await running.start()
    await asyncio.wait_for(running.wait_until_ready(), 15)
    yield running
    await asyncio.wait_for(running.stop(5), 15)


async def test_queue_buttons_run_their_command_as_the_clicker(
    fake: FakeDiscord, wired: DiscordPart, new_identity: Any, link: Any, pool: asyncpg.Pool
) -> None:
    guild = next(iter(fake.guilds.values()))
    alice, bob = fake.user("alice"), fake.user("bob")
    ident = await new_identity(frontend="discord", workspace=guild["id"], user=alice["id"])
    await new_identity(frontend="discord", workspace=guild["id"], user=bob["id"])
    acct = await link(ident, "youtube", "chan")
    at = datetime.now(UTC) + timedelta(days=1)
    soon = await scheduled_post(pool, ident, acct, title="Soon", at=at)
    broke = await scheduled_post(
        pool, ident, acct, title="Broke", at=at + timedelta(hours=1), failed="quota exceeded"
    )

    asked = social(fake, alice, "queue")
    await fake.dispatch("INTERACTION_CREATE", asked)
    [answer] = await fake.wait_for(lambda f: followups(f, asked))
    body = answer.body
    assert body["flags"] & EPHEMERAL
    titles = [e["title"] for e in body["embeds"]]
    assert titles[0].startswith(f"{soon}: ") and titles[1].startswith(f"{broke}: ")
    assert body["embeds"][0]["color"] == 0xFF0000
    assert "quota exceeded" in body["embeds"][1]["description"]
    rows = [[(b["label"], b["custom_id"]) for b in r["components"]] for r in body["components"]]
    assert rows == [
        [("Cancel", f"so:run:cancel {soon}"), ("Reschedule", f"so:run:reschedule {soon}")],
        [
            ("Retry", f"so:run:reschedule {broke} in 1m"),
            ("Reschedule", f"so:run:reschedule {broke}"),
        ],
    ]
    shown = next(m for m in fake.messages.values() if m.get("embeds") == body["embeds"])

    # Bob's click runs `cancel N` as Bob: refused privately, no approval asked.
    clicked = click(fake, bob, shown, f"so:run:cancel {soon}")
    await fake.dispatch("INTERACTION_CREATE", clicked)
    [refused] = await fake.wait_for(lambda f: followups(f, clicked))
    assert refused.body["flags"] & EPHEMERAL
    assert refused.body["content"] == f"You have no job {soon}."

    # Alice's "Retry" goes through approval, like typing `reschedule N in 1m`.
    clicked = click(fake, alice, shown, f"so:run:reschedule {broke} in 1m")
    await fake.dispatch("INTERACTION_CREATE", clicked)
    [approval] = await fake.wait_for(lambda f: followups(f, clicked))
    assert not (approval.body.get("flags") or 0) & EPHEMERAL  # visible where asked
    assert f"Move scheduled post {broke}" in approval.body["content"]
    [buttons] = approval.body["components"]
    assert [b["label"] for b in buttons["components"]] == ["Approve", "Reject"]
    run = await job_runs.get(pool, broke)
    assert run is not None and run.state == "failed"  # nothing happens before approval

    # "Reschedule": the exact command to type, privately.
    clicked = click(fake, alice, shown, f"so:run:reschedule {soon}")
    await fake.dispatch("INTERACTION_CREATE", clicked)
    [prefill] = await fake.wait_for(lambda f: followups(f, clicked))
    assert prefill.body["flags"] & EPHEMERAL
    assert f"`reschedule {soon} <when>`" in prefill.body["content"]


async def test_digest_approval_names_the_channel_as_a_mention(
    fake: FakeDiscord, wired: DiscordPart, new_identity: Any
) -> None:
    guild = next(iter(fake.guilds.values()))
    alice = fake.user("alice")
    await new_identity(frontend="discord", workspace=guild["id"], user=alice["id"])
    asked = social(fake, alice, "digest on at 08:30")
    await fake.dispatch("INTERACTION_CREATE", asked)
    [approval] = await fake.wait_for(lambda f: followups(f, asked))
    channel = asked["channel_id"]
    assert f"Post a daily digest in <#{channel}> at 08:30 UTC" in approval.body["content"]


async def test_failed_post_note_in_a_dm_retries_through_approval_in_the_server(
    fake: FakeDiscord, wired: DiscordPart, new_identity: Any, link: Any, pool: asyncpg.Pool
) -> None:
    """The note goes by DM (a workspace of its own): its buttons name the server, so the
    click and the approval it asks for act on the server's post, as its owner."""
    guild = next(iter(fake.guilds.values()))
    alice = fake.user("alice")
    ident = await new_identity(frontend="discord", workspace=guild["id"], user=alice["id"])
    acct = await link(ident, "youtube", "chan")
    at = datetime.now(UTC) + timedelta(hours=1)
    broke = await scheduled_post(pool, ident, acct, title="Broke", at=at, failed="quota")
    note = Layout(
        title=f"Scheduled post {broke} failed",
        sections=(Section("", body="quota", actions=post_actions(broke, failed=True)),),
    )
    reply_to = {"user_id": alice["id"], "channel_id": "1", "workspace_id": guild["id"]}
    await wired.notify(reply_to, "Your scheduled upload 'Broke' failed: quota", layout=note)

    [sent] = await fake.wait_for(lambda f: f.find("POST", r"/channels/\d+/messages"))
    dm_id = sent.path.split("/")[2]
    assert dm_id in fake.dm_channels
    [row] = sent.body["components"]
    retry = row["components"][0]
    assert retry["label"] == "Retry"
    assert retry["custom_id"] == f"so:run@{guild['id']}:reschedule {broke} in 1m"
    message = next(m for m in fake.messages.values() if m.get("components") == [row])

    def in_dm(custom_id: str, shown: dict[str, Any]) -> dict[str, Any]:
        return fake.interaction_payload(
            user=alice,
            guild_id=None,
            channel=fake.dm_channels[dm_id],
            type=3,
            data={"custom_id": custom_id, "component_type": 2},
            message=shown,
        )

    clicked = in_dm(retry["custom_id"], message)
    await fake.dispatch("INTERACTION_CREATE", clicked)
    [approval] = await fake.wait_for(lambda f: followups(f, clicked))
    assert f"Move scheduled post {broke}" in approval.body["content"]
    [buttons] = approval.body["components"]
    approve = buttons["components"][0]
    assert approve["custom_id"].startswith(f"so:ap@{guild['id']}:y:{alice['id']}:")
    asked = next(m for m in fake.messages.values() if m.get("components") == [buttons])

    clicked = in_dm(approve["custom_id"], asked)
    await fake.dispatch("INTERACTION_CREATE", clicked)

    # The requester's click writes the outcome into the approval message.
    pattern = rf"/webhooks/{fake.app_id}/{clicked['token']}/messages/@original"
    [outcome] = await fake.wait_for(lambda f: f.find("PATCH", pattern))
    assert f"Post {broke} will be tried again" in outcome.body["content"]
    run = await job_runs.get(pool, broke)
    assert run is not None and run.state == "queued"  # approved in the DM, acted in the server
