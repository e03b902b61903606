"""The converters on real discord.py objects built from gateway payloads."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.core.messages import ApprovalRequest
from bot.discord.buttons import CUSTOM_ID_LIMIT, ApprovalButton
from bot.discord.convert import mentions_bot, message_to_incoming, should_handle, strip_mentions
from bot.discord.sink import approval_content
from tests.fakes.discord import FakeDiscord

BOT_ID = 4242


def _message(client: discord.Client, channel: Any, **payload: Any) -> discord.Message:
    fake = FakeDiscord()
    data = fake.message_payload(
        author=payload.pop("author", fake.user("dana")),
        content=payload.pop("content", "hi"),
        channel_id=str(channel.id),
        guild_id=payload.pop("guild_id", None),
        **payload,
    )
    return discord.Message(state=client._connection, channel=channel, data=data)


async def test_mention_text_is_stripped_of_the_bot_mention_only() -> None:
    assert strip_mentions(f"<@{BOT_ID}>  upload <@99> please <@!{BOT_ID}>", BOT_ID) == (
        "upload <@99> please"
    )


async def test_thread_messages_share_one_conversation() -> None:
    client = discord.Client(intents=discord.Intents.none())
    state = client._connection
    guild = discord.Guild(data={"id": "77", "name": "G"}, state=state)
    thread = discord.Thread(
        guild=guild,
        state=state,
        data={
            "id": "555",
            "guild_id": "77",
            "parent_id": "1",
            "owner_id": "2",
            "name": "launch",
            "type": 11,
            "message_count": 3,
            "member_count": 2,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 60,
                "archive_timestamp": "2026-01-01T00:00:00+00:00",
            },
        },
    )
    bot_user = {
        "id": str(BOT_ID),
        "username": "bot",
        "discriminator": "0",
        "avatar": None,
        "bot": True,
    }
    message = _message(
        client, thread, guild_id="77", content=f"<@{BOT_ID}> captions", mentions=[bot_user]
    )
    assert should_handle(message, BOT_ID) and mentions_bot(message, BOT_ID)
    incoming = message_to_incoming(message, bot_id=BOT_ID)
    assert incoming.channel_id == "555" and incoming.thread_id == "555"
    assert incoming.workspace_id == "77" and incoming.text == "captions"
    await client.close()


def test_approval_ids_fit_discord_and_refuse_what_does_not() -> None:
    request = ApprovalRequest(
        action_id="0f6b6c1e-3f7a-4c55-8a55-4a1f2c3d4e5f",
        summary="Publish",
        requester_user_id="123456789012345678",
        expires_in_seconds=900,
    )
    button = ApprovalButton(
        request.requester_user_id, request.action_id, approve=True, guild="9" * 20
    )
    assert len(button.custom_id) <= CUSTOM_ID_LIMIT and request.action_id in button.custom_id
    with pytest.raises(ValueError, match="approval ids"):
        ApprovalButton("1", "x" * 90, approve=False)
    assert "<t:" in approval_content(request) and "Publish" in approval_content(request)
