"""Discord with the real conversation core: `/social` answers are ephemeral embeds with a
"Share to channel" button; the click posts the same embeds publicly, saying who shared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.service import ChatOpsService
from bot.discord.embeds import EmbedMessage, problems
from bot.discord.part import DiscordPart
from tests.bot.discord.test_interactions import EPHEMERAL, click, followups, social
from tests.bot.slack.test_private_answers import _report
from tests.fakes.chatops import FakeOps
from tests.fakes.discord import FakeDiscord


@pytest.fixture
async def ops() -> FakeOps:
    return FakeOps(allow={"metrics"})


@pytest.fixture
async def wired(fake: FakeDiscord, make_deps: Any, ops: FakeOps) -> AsyncIterator[DiscordPart]:
    core = ChatOpsService(deps=make_deps(ops=ops))
    running = DiscordPart(
        token=fake.token, handler=core, api_base=fake.api_base, guild_ready_timeout=0.05
    )
    await running.start()
    await asyncio.wait_for(running.wait_until_ready(), 15)
    yield running
    await asyncio.wait_for(running.stop(5), 15)


async def test_metrics_are_private_embeds_then_shared_with_the_button(
    fake: FakeDiscord, wired: DiscordPart, new_identity: Any, link: Any, ops: FakeOps
) -> None:
    guild = next(iter(fake.guilds.values()))
    alice = fake.user("alice")
    ident = await new_identity(frontend="discord", workspace=guild["id"], user=alice["id"])
    acct = await link(ident, "youtube", "chan")
    ops.report = _report(acct.ref)

    asked = social(fake, alice, "metrics youtube 7d")
    await fake.dispatch("INTERACTION_CREATE", asked)
    [answer] = await fake.wait_for(lambda f: followups(f, asked))

    body = answer.body
    assert body["flags"] & EPHEMERAL
    assert problems(EmbedMessage(body["content"], body["embeds"])) == []
    [embed] = body["embeds"]
    assert embed["title"] == f"YouTube {acct.ref}"
    assert embed["color"] == 0xFF0000  # YouTube's declared colour
    assert {"name": "Watch time", "value": "1,004 min", "inline": True} in embed["fields"]
    assert embed["thumbnail"]["url"].endswith("mqdefault.jpg")
    assert "[Launch day](https://www.youtube.com/watch?v=vid1)" in embed["description"]
    assert embed["footer"]["text"].startswith("as of 2026-11-25 08:00 UTC")
    assert "estimated: Watch time" in embed["footer"]["text"]
    [row] = body["components"]
    [button] = row["components"]
    assert button["label"] == "Share to channel"
    shown = next(m for m in fake.messages.values() if m.get("embeds") == body["embeds"])
    assert shown["flags"] & EPHEMERAL  # the private loading message became the answer

    clicked = click(fake, alice, shown, button["custom_id"])
    await fake.dispatch("INTERACTION_CREATE", clicked)
    [shared] = await fake.wait_for(lambda f: followups(f, clicked))
    assert not (shared.body.get("flags") or 0) & EPHEMERAL
    assert shared.body["content"].startswith(f"Shared by <@{alice['id']}>")
    assert shared.body["embeds"] == body["embeds"]
    assert not shared.body.get("components")  # no button on the public copy
    # The private copy, its button spent, is removed.
    await fake.wait_for(lambda f: shown["id"] not in f.messages)
