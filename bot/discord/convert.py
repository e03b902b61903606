"""Pure converters: a discord.py message or interaction -> `IncomingMessage`.

Mapping (Discord -> socialops):
- workspace: the guild id; a DM has no guild, so it is `dm:<user id>` (each person's
  DMs are their own workspace, so one user's DMs never share limits with another's);
- channel: the channel id (a Discord thread is a channel, so its id);
- thread: the conversation key. A Discord thread is one shared conversation (its id);
  in a plain channel each person keeps their own running conversation with the bot
  (`user-<id>`), so two people talking to the bot in #general never mix histories;
  a DM is one conversation (`dm`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import discord
import httpx

from agent.context import AdminCheck
from bot.core.messages import Attachment, IncomingMessage

DM_WORKSPACE_PREFIX = "dm:"
_STREAM_CHUNK = 64 * 1024


def dm_workspace(user_id: int | str) -> str:
    """The workspace id used for a person's direct messages with the bot."""
    return f"{DM_WORKSPACE_PREFIX}{user_id}"


async def stream_url(
    url: str,
    *,
    read_timeout: float = 60.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[bytes]:
    """Stream a file from Discord's CDN chunk by chunk; nothing is held whole in memory."""
    async with (
        httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=10.0),
            follow_redirects=True,
            transport=transport,
        ) as client,
        client.stream("GET", url) as response,
    ):
        response.raise_for_status()
        async for chunk in response.aiter_bytes(_STREAM_CHUNK):
            yield chunk


def convert_attachment(
    attachment: discord.Attachment, *, transport: httpx.AsyncBaseTransport | None = None
) -> Attachment:
    """A Discord attachment as a streamable `Attachment` with an `http` locator.

    Discord's CDN URLs are signed and expire after about a day; a durable job
    that re-opens the locator later must do so within that window.
    """
    locator: dict[str, Any] = {
        "kind": "http",
        "url": attachment.url,
        "size": attachment.size,
        "mime_type": attachment.content_type,
    }
    if (expires := link_expiry(attachment.url)) is not None:
        locator["expires_at"] = expires.isoformat()  # a scheduled post must run before
    return Attachment(
        name=attachment.filename,
        size=attachment.size,
        mime_type=attachment.content_type,
        open=partial(stream_url, attachment.url, transport=transport),
        locator=locator,
    )


def link_expiry(url: str) -> datetime | None:
    """When a signed CDN link lapses: its `ex` query parameter (hex Unix seconds)."""
    values = parse_qs(urlsplit(url).query).get("ex")
    try:
        return datetime.fromtimestamp(int(values[0], 16), UTC) if values else None
    except (ValueError, OverflowError, OSError):
        return None


def _mention_pattern(bot_id: int) -> re.Pattern[str]:
    return re.compile(rf"<@!?{bot_id}>")


def strip_mentions(text: str, bot_id: int) -> str:
    """The message text without the bot's own mention(s), whitespace tidied."""
    return " ".join(_mention_pattern(bot_id).sub(" ", text).split())


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    """True if the message addresses the bot: a user mention, or a mention of its own role."""
    if any(user.id == bot_id for user in message.mentions):
        return True
    if _mention_pattern(bot_id).search(message.content):
        return True
    guild = message.guild
    me = guild.me if guild is not None else None
    if me is not None:
        # Discord auto-creates a managed role for an app; people often pick it by mistake.
        own_roles = {role.id for role in getattr(me, "roles", []) if role.is_bot_managed()}
        if own_roles and any(role.id in own_roles for role in message.role_mentions):
            return True
    return False


def should_handle(message: discord.Message, bot_id: int) -> bool:
    """Whether the bot answers this message: a person's DM, or a person mentioning it."""
    if message.author.bot or message.author.id == bot_id:
        return False  # never answer itself or another bot (loops)
    if message.webhook_id is not None or message.is_system():
        return False
    if message.guild is None:
        return True
    return mentions_bot(message, bot_id)


def _conversation(channel: object, *, user_id: int, is_dm: bool) -> tuple[str, str]:
    """(channel id, thread key) for a channel-like object."""
    if is_dm:
        return str(getattr(channel, "id", "")), "dm"
    if isinstance(channel, discord.Thread):
        return str(channel.id), str(channel.id)
    return str(getattr(channel, "id", "")), f"user-{user_id}"


def message_to_incoming(
    message: discord.Message,
    *,
    bot_id: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> IncomingMessage:
    """Convert a gateway message (already accepted by `should_handle`)."""
    is_dm = message.guild is None
    channel_id, thread_id = _conversation(message.channel, user_id=message.author.id, is_dm=is_dm)
    guild = message.guild
    return IncomingMessage(
        frontend="discord",
        workspace_id=str(guild.id) if guild is not None else dm_workspace(message.author.id),
        workspace_name=guild.name if guild is not None else "Direct messages",
        channel_id=channel_id,
        thread_id=thread_id,
        message_id=str(message.id),
        user_id=str(message.author.id),
        user_name=message.author.display_name,
        text=strip_mentions(message.content, bot_id),
        attachments=tuple(convert_attachment(a, transport=transport) for a in message.attachments),
        is_dm=is_dm,
        is_mention=not is_dm and mentions_bot(message, bot_id),
        admin_check=admin_check(
            isinstance(message.author, discord.Member)
            and message.author.guild_permissions.manage_guild
        ),
    )


def interaction_to_incoming(
    interaction: discord.Interaction,
    *,
    text: str,
    attachments: list[discord.Attachment] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> IncomingMessage:
    """Convert a `/social` slash command: its text goes to the command grammar, never the model."""
    user = interaction.user
    is_dm = interaction.guild_id is None
    channel = interaction.channel
    channel_id, thread_id = _conversation(
        channel if channel is not None else discord.Object(interaction.channel_id or 0),
        user_id=user.id,
        is_dm=is_dm,
    )
    guild = interaction.guild
    return IncomingMessage(
        frontend="discord",
        workspace_id=str(interaction.guild_id) if not is_dm else dm_workspace(user.id),
        workspace_name=(guild.name if guild is not None else None)
        if not is_dm
        else "Direct messages",
        channel_id=channel_id,
        thread_id=thread_id,
        message_id=str(interaction.id),
        user_id=str(user.id),
        user_name=user.display_name,
        text=" ".join(text.split()),
        attachments=tuple(convert_attachment(a, transport=transport) for a in attachments or []),
        is_dm=is_dm,
        is_command=True,
        # The member's permissions come with the interaction (no lookup).
        admin_check=admin_check(not is_dm and interaction.permissions.manage_guild),
    )


def admin_check(manages_server: bool) -> AdminCheck:
    """Discord's workspace admins: members with the Manage Server permission."""

    async def check() -> bool:
        return manages_server

    return check
