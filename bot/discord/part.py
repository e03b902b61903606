"""`DiscordPart`: runs the gateway client under the process lifecycle (`bot.services.Part`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
import httpx

from bot.core.messages import ConversationHandler
from bot.core.text import split_message
from bot.discord.client import SocialOpsClient, point_at

log = logging.getLogger(__name__)


class DiscordUnavailable(RuntimeError):
    """The Discord front-end cannot run (rejected token, unreachable API)."""


class DiscordPart:
    """Logs in, keeps the gateway connection (discord.py reconnects and resumes), and on
    stop lets in-flight conversations finish before closing the HTTP session."""

    name = "discord"

    def __init__(
        self,
        *,
        token: str,
        handler: ConversationHandler,
        api_base: str = "https://discord.com/api/v10",
        command_name: str = "social",
        sync_commands: bool = True,
        guild_ready_timeout: float = 2.0,
        attachment_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token = token
        self._handler = handler
        self._api_base = api_base
        self._client_options: dict[str, Any] = {
            "command_name": command_name,
            "sync_commands": sync_commands,
            "guild_ready_timeout": guild_ready_timeout,
            "attachment_transport": attachment_transport,
        }
        self._client: SocialOpsClient | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def client(self) -> SocialOpsClient:
        if self._client is None:
            raise RuntimeError("the Discord part has not been started")
        return self._client

    async def start(self) -> None:
        point_at(self._api_base)
        client = SocialOpsClient(handler=self._handler, **self._client_options)
        self._client = client
        try:
            await client.login(self._token)
        except discord.LoginFailure:
            await client.close()
            raise DiscordUnavailable(
                "Discord rejected DISCORD_TOKEN; check the bot token"
            ) from None
        except (discord.HTTPException, OSError) as exc:
            await client.close()
            raise DiscordUnavailable(
                f"could not reach the Discord API: {type(exc).__name__}"
            ) from None
        except BaseException:
            await client.close()
            raise
        self._task = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")

    async def wait_until_ready(self) -> None:
        """Return once the gateway session is up (READY and guilds received)."""
        client = self.client
        waiter = asyncio.create_task(client.wait_until_ready())
        assert self._task is not None
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            self._task.result()  # surface why the connection ended
            raise DiscordUnavailable("the Discord gateway closed before it was ready")

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def stop(self, grace: float) -> None:
        client = self._client
        if client is None:
            return
        client.accepting = False
        pending = {t for t in client.inflight if t is not asyncio.current_task()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                log.warning("discord work cut short at shutdown", extra={"tasks": len(late)})
                await asyncio.gather(*late, return_exceptions=True)
        await client.close()  # closes the gateway and the aiohttp session
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
            except Exception:
                log.debug("gateway task ended with an error during stop", exc_info=True)

    async def notify(self, reply_to: dict[str, Any], text: str) -> None:
        """DM the person named in `reply_to` (used when an OAuth flow completes).

        If their DMs are closed, the note goes to the channel they asked from, with a mention.
        `reply_to` may use this adapter's keys (`user`, `channel`, `guild`) or the core's
        (`user_id`, `channel_id`, `workspace_id`), which is what a link started in chat stores.
        """
        client = self.client
        user_id = int(reply_to.get("user") or reply_to["user_id"])
        try:
            dm = await client.create_dm(discord.Object(id=user_id))
            for part in split_message(text):
                await dm.send(part)
            return
        except discord.Forbidden:
            channel_id = reply_to.get("channel") or reply_to.get("channel_id")
            if not channel_id:
                raise
        guild = str(reply_to.get("guild") or reply_to.get("workspace_id") or "")
        channel = client.get_partial_messageable(
            int(channel_id), guild_id=int(guild) if guild.isdigit() else None
        )
        for part in split_message(f"<@{user_id}> {text}"):
            await channel.send(
                part, allowed_mentions=discord.AllowedMentions(users=[discord.Object(id=user_id)])
            )
