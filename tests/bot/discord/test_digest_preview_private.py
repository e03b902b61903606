"""`digest preview` in Discord: the digest's own embeds as an ephemeral follow-up,
within Discord's limits, without the chart attachment."""

from __future__ import annotations

import dataclasses
from typing import Any

from bot.core.messages import IncomingMessage, Reply, ReplySink
from bot.digest_preview import sample_digest
from bot.discord.embeds import EmbedMessage, problems
from tests.bot.discord.test_interactions import EPHEMERAL, followups, social
from tests.fakes.discord import FakeDiscord

NOTE = "Preview, only for you: the real digest also carries the views chart."


async def test_preview_is_the_digests_embeds_privately(
    fake: FakeDiscord, part: Any, handler: Any
) -> None:
    digest = dataclasses.replace(sample_digest(), notice=NOTE, chart=[], chart_days=None)

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send_private(Reply(digest.text(), digest=digest))

    handler.on_message = reply
    asked = social(fake, fake.user("alice"), "digest preview")
    await fake.dispatch("INTERACTION_CREATE", asked)
    [answer] = await fake.wait_for(lambda f: followups(f, asked))
    body = answer.body
    assert body["flags"] & EPHEMERAL
    assert problems(EmbedMessage(body.get("content") or "", body["embeds"])) == []
    main = body["embeds"][0]
    assert main["title"] == digest.title and NOTE in main["description"]
    assert "image" not in main  # no chart attachment in a private follow-up
    assert any(e["title"].startswith("Top post 1: ") for e in body["embeds"][1:])
    assert not body.get("attachments")
