"""DiscordPart lifecycle against the fake gateway, and `notify` for OAuth completions."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings

import discord
import pytest

from bot.core.messages import IncomingMessage, Reply, ReplySink
from bot.discord import DiscordPart, DiscordUnavailable
from tests.bot.discord.helpers import channel_posts, guild_and_channel, mention

MESSAGE_CONTENT_INTENT = 1 << 15


async def test_starts_identifies_syncs_and_stops_cleanly(fake, handler, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    part = DiscordPart(
        token=fake.token, handler=handler, api_base=fake.api_base, guild_ready_timeout=0.05
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await part.start()
        await asyncio.wait_for(part.wait_until_ready(), 15)
        [identify] = fake.identifies
        assert identify["token"] == fake.token
        intents = discord.Intents._from_value(identify["intents"])
        assert intents.guilds and intents.guild_messages and intents.dm_messages
        assert not identify["intents"] & MESSAGE_CONTENT_INTENT  # privileged: not needed
        assert fake.heartbeats >= 1
        assert [c["name"] for c in fake.commands] == ["social"]
        assert {o["name"] for o in fake.commands[0]["options"]} == {"request", "file"}
        assert [g.id for g in part.client.guilds] == [int(gid) for gid in fake.guilds]

        await asyncio.wait_for(part.stop(5), 10)
        await asyncio.wait_for(part.wait(), 5)  # the gateway task has ended
        assert part.client.is_closed()
        assert part.client.http._HTTPClient__session.closed  # the aiohttp session
        await fake.wait_for(lambda f: not f._connections)
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
    assert "Unclosed" not in caplog.text
    # The token never reaches the client's logs (the fake server's own debug log aside).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("bot.", "discord."))]
    assert ours and not any(fake.token in line for line in ours)


async def test_a_rejected_token_fails_start_clearly(fake, handler, caplog) -> None:
    part = DiscordPart(token="wrong-token-value", handler=handler, api_base=fake.api_base)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DiscordUnavailable) as info:
            await part.start()
        gc.collect()
    assert "DISCORD_TOKEN" in str(info.value)
    assert "wrong-token-value" not in str(info.value) + caplog.text
    assert part.client.is_closed()
    assert part.client.http._HTTPClient__session.closed
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert fake.identifies == []


async def test_stop_lets_in_flight_conversations_finish(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(message: IncomingMessage, sink: ReplySink) -> None:
        started.set()
        await release.wait()
        await sink.send(Reply("finished"))

    handler.on_message = slow
    await mention(fake, fake.user("alice"), "slow one")
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(part.stop(10))
    await asyncio.sleep(0)
    assert not part.client.accepting  # intake stopped first
    release.set()
    await asyncio.wait_for(stopping, 15)
    [post] = channel_posts(fake, channel["id"])
    assert post.body["content"] == "finished"


async def test_notify_sends_a_direct_message(fake, part) -> None:
    guild, channel = guild_and_channel(fake)
    alice = fake.user("alice")
    reply_to = {
        "frontend": "discord",
        "guild": guild["id"],
        "channel": channel["id"],
        "user": alice["id"],
    }
    await part.notify(reply_to, "Your YouTube channel 'Cats' is linked.")
    [dm] = fake.find("POST", r"/users/@me/channels")
    assert str(dm.body["recipient_id"]) == alice["id"]
    [post] = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/messages")]
    assert post.body["content"] == "Your YouTube channel 'Cats' is linked."
    assert channel_posts(fake, channel["id"]) == []


async def test_notify_falls_back_to_the_channel_when_dms_are_closed(fake, part) -> None:
    guild, channel = guild_and_channel(fake)
    alice = fake.user("alice")
    fake.fail_next("POST", r"/channels/\d+/messages", status=403, code=50007)
    reply_to = {
        "frontend": "discord",
        "guild": guild["id"],
        "channel": channel["id"],
        "user": alice["id"],
    }
    await part.notify(reply_to, "Your YouTube channel 'Cats' is linked.")
    [post] = channel_posts(fake, channel["id"])
    assert post.body["content"] == f"<@{alice['id']}> Your YouTube channel 'Cats' is linked."
    assert post.body["allowed_mentions"]["users"] == [int(alice["id"])]


async def test_notify_understands_the_reply_to_the_core_stores(fake, part) -> None:
    """An OAuth link started from Discord stores the core's `reply_to` spelling
    (bot.core.service: workspace_id / channel_id / user_id); the "linked" note must arrive."""
    guild, channel = guild_and_channel(fake)
    alice = fake.user("alice")
    reply_to = {
        "frontend": "discord",
        "workspace_id": guild["id"],
        "channel_id": channel["id"],
        "thread_id": None,
        "user_id": alice["id"],
    }
    await part.notify(reply_to, "Linked YouTube Cats.")
    [dm] = fake.find("POST", r"/users/@me/channels")
    assert str(dm.body["recipient_id"]) == alice["id"]
    fake.fail_next("POST", r"/channels/\d+/messages", status=403, code=50007)
    await part.notify(reply_to, "Linked YouTube Dogs.")
    [post] = channel_posts(fake, channel["id"])
    assert post.body["content"] == f"<@{alice['id']}> Linked YouTube Dogs."


async def test_gateway_frames_are_compressed_as_requested(fake, part) -> None:
    """discord.py asks for a compressed stream; the fake honors it, so decoding is exercised."""
    [query] = fake.gateway_queries
    assert query["v"] == "10" and query["encoding"] == "json"
    assert query["compress"] in {"zlib-stream", "zstd-stream"}
    assert part.client.is_ready()


async def test_survives_a_dropped_gateway_by_resuming(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send(Reply("back"))

    handler.on_message = reply
    await fake.drop_connections(code=4000)
    await fake.wait_for(lambda f: any(c.ready.is_set() for c in f._connections))
    [resume] = fake.resumes
    assert resume["token"] == fake.token and resume["session_id"].startswith("session-")
    assert len(fake.identifies) == 1  # resumed, not re-identified
    await mention(fake, fake.user("alice"), "still there?")
    [post] = await fake.wait_for(lambda f: channel_posts(f, channel["id"]))
    assert post.body["content"] == "back"
