"""Small helpers shared by the Discord adapter tests."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord import FakeDiscord


def guild_and_channel(fake: FakeDiscord) -> tuple[dict[str, Any], dict[str, Any]]:
    guild = next(iter(fake.guilds.values()))
    return guild, guild["channels"][0]


async def mention(
    fake: FakeDiscord, author: dict[str, Any], text: str, **extra: Any
) -> dict[str, Any]:
    """Dispatch a guild message that mentions the bot; returns the payload sent."""
    guild, channel = guild_and_channel(fake)
    data = fake.message_payload(
        author=author,
        content=f"<@{fake.app_id}> {text}",
        channel_id=channel["id"],
        guild_id=guild["id"],
        mentions=[fake.bot_user],
        **extra,
    )
    await fake.dispatch("MESSAGE_CREATE", data)
    return data


def channel_posts(fake: FakeDiscord, channel_id: str) -> list[Any]:
    return fake.find("POST", rf"/channels/{channel_id}/messages")
