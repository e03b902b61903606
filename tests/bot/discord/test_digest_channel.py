"""A Discord digest goes only to a channel of the server (or DM) that asked for it.

One bot token reaches every guild the bot is in, so a channel id named in guild A
must not let guild A's figures be posted into guild B.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from agent.digest_content import AccountSection, Change, Digest
from bot.digest_post import DigestPoster, DigestUndeliverable
from bot.notify import Notifiers
from integrations.base import Metric
from storage.digests import Workspace
from tests.fakes.discord import FakeDiscord


def _poster(fake: FakeDiscord, http: httpx.AsyncClient) -> DigestPoster:
    return DigestPoster(
        slack=None,
        notifiers=Notifiers(),
        discord_token=fake.token,
        discord_api_base=fake.api_base,
        http=http,
    )


NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _digest(title: str, **more: Any) -> Digest:
    return Digest(title, NOW, **more)


def _titles(messages: list[dict[str, Any]]) -> list[str]:
    return [m["embeds"][0]["title"] for m in messages]


def _posted_to(fake: FakeDiscord, channel_id: str) -> list[dict[str, Any]]:
    return [m for m in fake.created if m["channel_id"] == channel_id]


async def test_digest_refuses_a_channel_of_another_guild(fake: FakeDiscord) -> None:
    home = next(iter(fake.guilds.values()))
    other = fake.add_guild("Someone else")
    workspace = Workspace(id=1, frontend="discord", external_id=home["id"], name="Creators")
    async with httpx.AsyncClient() as http:
        poster = _poster(fake, http)
        foreign = other["channels"][0]["id"]
        with pytest.raises(DigestUndeliverable):
            await poster(workspace, foreign, _digest("Daily digest: secret figures"))
        assert _posted_to(fake, foreign) == []
        with pytest.raises(DigestUndeliverable):
            await poster(workspace, "..", _digest("Daily digest"))
        own = home["channels"][0]["id"]
        ref = await poster(workspace, own, _digest("Daily digest: our figures"))
    assert ref and _titles(_posted_to(fake, own)) == ["Daily digest: our figures"]


async def test_dm_digest_goes_only_to_that_persons_dm(fake: FakeDiscord) -> None:
    guild = next(iter(fake.guilds.values()))
    async with httpx.AsyncClient() as http:
        opened = await http.post(
            f"{fake.api_base}/users/@me/channels",
            headers={"Authorization": f"Bot {fake.token}"},
            json={"recipient_id": "4242"},
        )
        dm = opened.json()["id"]
        poster = _poster(fake, http)
        mine = Workspace(id=2, frontend="discord", external_id="dm:4242", name=None)
        theirs = Workspace(id=3, frontend="discord", external_id="dm:777", name=None)
        with pytest.raises(DigestUndeliverable):
            await poster(mine, guild["channels"][0]["id"], _digest("Daily digest"))
        with pytest.raises(DigestUndeliverable):
            await poster(theirs, dm, _digest("Daily digest"))
        assert fake.created == []
        await poster(mine, dm, _digest("Daily digest: mine"))
    assert _titles(_posted_to(fake, dm)) == ["Daily digest: mine"]


async def test_a_digest_of_many_accounts_is_one_message_within_discords_limits(
    fake: FakeDiscord,
) -> None:
    """200 accounts: one message (a retry never finds half a digest out), its fields
    and characters within Discord's limits, and the accounts left out counted."""
    home = next(iter(fake.guilds.values()))
    own = home["channels"][0]["id"]
    workspace = Workspace(id=1, frontend="discord", external_id=home["id"], name="Creators")
    day = date(2026, 11, 24)
    accounts = [
        AccountSection(
            f"a{i}",
            "YouTube",
            f"channel{i}",
            day,
            [Change(m, i * 100.0, i * 90.0) for m in (Metric.VIEWS, Metric.LIKES)],
            date(2026, 11, 23),
        )
        for i in range(200)
    ]
    async with httpx.AsyncClient() as http:
        ref = await _poster(fake, http)(workspace, own, _digest("Daily digest", accounts=accounts))
    [message] = _posted_to(fake, own)
    assert ref == message["id"]
    [embed] = message["embeds"]
    assert len(embed["fields"]) <= 25
    total = len(embed["title"]) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000
    assert embed["fields"][0]["name"].startswith("YouTube @channel0")
    assert "▲" in embed["fields"][1]["value"]
    assert embed["fields"][-1]["value"].startswith("…and ")


async def test_the_chart_is_attached_and_shown_in_the_embed_and_owners_told_by_dm(
    fake: FakeDiscord,
) -> None:
    from bot.digest_chart import render_png
    from bot.digest_preview import sample_digest

    home = next(iter(fake.guilds.values()))
    own = home["channels"][0]["id"]
    workspace = Workspace(id=1, frontend="discord", external_id=home["id"], name="Creators")
    digest = sample_digest()
    async with httpx.AsyncClient() as http:
        ref = await _poster(fake, http)(workspace, own, digest)
    [message] = _posted_to(fake, own)
    assert ref == message["id"]
    [attachment] = message["attachments"]
    assert attachment["filename"] == "digest-views.png"
    [(_name, kind, data)] = fake.message_files[message["id"]]
    assert kind == "image/png" and data == render_png(digest.chart, digest.chart_days)
    main, *posts = message["embeds"]
    assert main["image"] == {"url": "attachment://digest-views.png"}
    assert posts[0]["title"] == "Top post 1: Building a desk lamp from scrap"
    assert posts[0]["thumbnail"]["url"].endswith("/desk-lamp.jpg")
    # The relink prompt went to its owner's DM, not into the channel.
    [dm] = [m for m in fake.created if m["channel_id"] != own]
    assert "linked again" in dm["content"] and dm["channel_id"] in fake.dm_channels
