"""The discord.py client: gateway events in, `ConversationHandler` calls out.

Intents are the minimum: guilds (channel cache), guild and DM messages. The
privileged message-content intent is not needed, because Discord still sends
the content of DMs and of messages that mention the bot, and that is all the
bot answers. `/social` is an application command for the deterministic grammar.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, cast

import discord
import httpx
import yarl
from discord import app_commands

from bot.core.messages import ConversationHandler, Reply
from bot.discord.buttons import ApprovalButton, RunButton, ShareButton
from bot.discord.convert import (
    dm_workspace,
    interaction_to_incoming,
    message_to_incoming,
    should_handle,
)
from bot.discord.sink import ApprovalClickSink, ChannelSink, InteractionSink

log = logging.getLogger(__name__)

FRONTEND = "discord"
_SORRY = "Something went wrong on my side; please try again in a moment."


def intents() -> discord.Intents:
    """Only what the adapter reads; no privileged intents."""
    value = discord.Intents.none()
    value.guilds = True
    value.guild_messages = True
    value.dm_messages = True
    return value


def point_at(api_base: str) -> None:
    """Send discord.py's REST calls to `api_base` (DISCORD_API_BASE).

    discord.py keeps the base URL on a class (`Route.BASE`) rather than on the
    client, so this is process-wide; a process runs one Discord bot.
    """
    discord.http.Route.BASE = api_base.rstrip("/")


class SocialOpsClient(discord.AutoShardedClient):
    """Routes mentions, DMs, `/social` and approval clicks to the conversation handler.

    Sharded: `shard_ids` of `shard_count` (None: every shard Discord recommends)."""

    def __init__(
        self,
        *,
        handler: ConversationHandler,
        command_name: str = "social",
        sync_commands: bool = True,
        guild_ready_timeout: float = 2.0,
        attachment_transport: httpx.AsyncBaseTransport | None = None,
        shard_count: int | None = None,
        shard_ids: list[int] | None = None,
    ) -> None:
        # The bot never joins voice: skip discord.py's "voice will NOT be supported" warnings.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=intents(),
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=False, replied_user=True
            ),
            guild_ready_timeout=guild_ready_timeout,
            max_messages=None,  # the adapter never reads the message cache
            chunk_guilds_at_startup=False,
            shard_count=shard_count,
            # discord.py's typed options leave out None, which it takes: every shard.
            shard_ids=cast("list[int]", shard_ids),
        )
        self.handler = handler
        self.accepting = True
        self.inflight: set[asyncio.Task[Any]] = set()
        self._sync_commands = sync_commands
        self._transport = attachment_transport
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(self._social_command(command_name))

    # --- lifecycle --------------------------------------------------------------------
    async def setup_hook(self) -> None:
        # discord.py connects to a fixed gateway host unless told otherwise; ask the API
        # (GET /gateway/bot) like Discord recommends, which also makes DISCORD_API_BASE
        # alone enough to point the whole client at another server.
        _, url, _ = await self.http.get_bot_gateway()
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self.add_dynamic_items(ApprovalButton, ShareButton, RunButton)
        if self._sync_commands:
            synced = await self.tree.sync()
            log.info("discord commands synced", extra={"count": len(synced)})

    async def on_ready(self) -> None:
        log.info(
            "discord connected",
            extra={"guilds": len(self.guilds), "user_id": self.user.id if self.user else None},
        )

    @asynccontextmanager
    async def _tracked(self) -> AsyncIterator[None]:
        """Count the current event as in-flight work, so stop() can let it finish."""
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.inflight.discard(task)

    # --- messages ---------------------------------------------------------------------
    async def on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or not self.accepting or not should_handle(message, me.id):
            return
        async with self._tracked():
            incoming = message_to_incoming(message, bot_id=me.id, transport=self._transport)
            sink = ChannelSink(
                channel=message.channel,
                requester=message.author,
                request=message,
                client=self,
                is_dm=incoming.is_dm,
            )
            try:
                async with _typing(message.channel):
                    await self.handler.handle(incoming, sink)
            except Exception:
                log.exception("discord message handling failed")
                await _apologize(sink)

    # --- /social ----------------------------------------------------------------------
    def _social_command(self, name: str) -> app_commands.Command[Any, Any, None]:
        async def social(
            interaction: discord.Interaction,
            request: str = "",
            file: discord.Attachment | None = None,
        ) -> None:
            await self.on_social(interaction, request, file)

        described = app_commands.describe(
            request="What to do, e.g. 'metrics 7d' or 'help'",
            file="A video or image to use (for uploads)",
        )(social)
        return app_commands.Command(
            name=name,
            description="Social accounts: link, upload, metrics, captions, digests (try 'help')",
            callback=described,
        )

    async def on_social(
        self,
        interaction: discord.Interaction,
        request: str,
        file: discord.Attachment | None,
        *,
        guild: str | None = None,
    ) -> None:
        """`/social <request>` (and command buttons). `guild`: a button in a DM about a
        server's posts runs as the clicker in that server (their DMs are another workspace)."""
        if not self.accepting:
            await interaction.response.send_message(
                "I'm restarting; please try again in a moment.", ephemeral=True
            )
            return
        async with self._tracked():
            # Discord allows 3 seconds for the first response: acknowledge, then follow up.
            # Answers are the asker's alone unless shared, so the "thinking" is private too.
            await interaction.response.defer(ephemeral=True, thinking=True)
            incoming = interaction_to_incoming(
                interaction,
                text=request,
                attachments=[file] if file is not None else None,
                transport=self._transport,
            )
            sink = InteractionSink(interaction=interaction, loading_ephemeral=True)
            if guild and interaction.guild_id is None:
                incoming = replace(incoming, workspace_id=guild, workspace_name=None)
                sink.guild = guild
            try:
                await self.handler.handle(incoming, sink)
            except Exception:
                log.exception("discord command handling failed")
                await _apologize(sink)
            if not sink.sent_any:
                # Nothing to say: do not leave "thinking..." forever.
                await interaction.delete_original_response()

    # --- approval buttons -------------------------------------------------------------
    async def on_approval_click(
        self,
        interaction: discord.Interaction,
        *,
        requester_user_id: str,
        action_id: str,
        approved: bool,
        guild: str | None = None,
    ) -> None:
        """Pass the click to the core with the CLICKER's id; the core decides who may approve.

        The requester's click shows its outcome in the approval message itself; anyone
        else's click is answered privately, leaving the buttons for the requester.
        """
        if not self.accepting:
            await interaction.response.send_message(
                "I'm restarting; please click again in a moment.", ephemeral=True
            )
            return
        async with self._tracked():
            clicker = interaction.user
            sink: InteractionSink
            if str(clicker.id) == requester_user_id and interaction.message is not None:
                await interaction.response.defer()  # "deferred update": no new message
                sink = ApprovalClickSink(interaction=interaction, approved=approved)
            else:
                await interaction.response.defer(ephemeral=True, thinking=True)
                sink = InteractionSink(
                    interaction=interaction, ephemeral=True, loading_ephemeral=True
                )
            workspace = (
                str(interaction.guild_id)
                if interaction.guild_id is not None
                else guild or dm_workspace(clicker.id)
            )
            try:
                await self.handler.resolve_approval(
                    frontend=FRONTEND,
                    workspace_id=workspace,
                    user_id=str(clicker.id),
                    action_id=action_id,
                    approved=approved,
                    sink=sink,
                )
            except Exception:
                log.exception("discord approval handling failed")
                await _apologize(sink)
            if not sink.sent_any and interaction.response.type is not None:
                if (
                    interaction.response.type
                    == discord.InteractionResponseType.deferred_channel_message
                ):
                    await interaction.delete_original_response()  # no "thinking…" left behind

    # --- "Share to channel" -----------------------------------------------------------
    async def on_share_click(self, interaction: discord.Interaction, *, share_id: str) -> None:
        """Post a private answer publicly for the person who clicked (the core checks it is
        theirs); the private copy stays as it was."""
        if not self.accepting:
            await interaction.response.send_message(
                "I'm restarting; please click again in a moment.", ephemeral=True
            )
            return
        async with self._tracked():
            await interaction.response.defer()  # "deferred update": nothing shown yet
            sink = InteractionSink(interaction=interaction)
            workspace = (
                str(interaction.guild_id)
                if interaction.guild_id is not None
                else dm_workspace(interaction.user.id)
            )
            try:
                shared = await self.handler.share(
                    frontend=FRONTEND,
                    workspace_id=workspace,
                    user_id=str(interaction.user.id),
                    share_id=share_id,
                    sink=sink,
                )
                if shared:  # the private copy has served its purpose: remove it
                    await interaction.delete_original_response()
            except Exception:
                log.exception("discord share handling failed")
                await _apologize(sink)

    # --- command buttons ("Cancel", "Reschedule", "Retry") ---------------------------
    async def on_command_click(
        self, interaction: discord.Interaction, *, command: str, guild: str | None = None
    ) -> None:
        """Run a button's command as the person who clicked, exactly as if they had typed
        `/social <command>`: private answer, approval where they are, the core's checks."""
        await self.on_social(interaction, command, None, guild=guild)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("discord event handler failed", extra={"event": event_method})


@asynccontextmanager
async def _typing(channel: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show "typing…" while the core works; a channel that refuses it must not stop the reply."""
    indicator = channel.typing()
    try:
        await indicator.__aenter__()
        entered = True
    except discord.HTTPException:
        entered = False
    try:
        yield
    finally:
        if entered:
            await indicator.__aexit__(None, None, None)


async def _apologize(sink: ChannelSink | InteractionSink) -> None:
    try:
        await sink.send(Reply(_SORRY))
    except Exception:
        log.exception("could not deliver an error reply")
