"""`DiscordPart`: runs the gateway client under the process lifecycle (`bot.services.Part`).

With a `ShardLease` (as `socialops run`/`discord` build it) the part first waits for its
shards' lease, then connects, keeps the lease while connected and lets go when it stops;
a lost lease disconnects it at once (see `bot.discord.shards`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

import discord
import httpx

from agent.layout import Layout
from bot.core.messages import ConversationHandler, Reply
from bot.core.text import split_message
from bot.discord.client import SocialOpsClient, point_at
from bot.discord.shards import LeaseLost, ShardLease, ShardPlan
from bot.discord.sink import ChannelSink

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
        shards: ShardPlan | None = None,
        lease: ShardLease | None = None,
    ) -> None:
        self._token = token
        self._handler = handler
        self._api_base = api_base
        self._client_options: dict[str, Any] = {
            "command_name": command_name,
            "sync_commands": sync_commands,
            "guild_ready_timeout": guild_ready_timeout,
            "attachment_transport": attachment_transport,
            "shard_count": shards.count if shards else None,
            "shard_ids": shards.shard_ids if shards else None,
        }
        self._lease = lease
        self._client: SocialOpsClient | None = None
        self._connected = asyncio.Event()
        self._gateway: asyncio.Task[None] | None = None  # the client's connection
        self._task: asyncio.Task[None] | None = None  # what wait() waits for

    @property
    def client(self) -> SocialOpsClient:
        if self._client is None:
            raise RuntimeError("the Discord part has not been started")
        return self._client

    async def start(self) -> None:
        point_at(self._api_base)
        if self._lease is None:
            await self._connect()
            self._task = self._gateway
        else:
            self._task = asyncio.create_task(self._run_leased(self._lease), name="discord-leased")

    async def _run_leased(self, lease: ShardLease) -> None:
        """Wait for the shards' lease, then run the gateway while keeping it."""
        await lease.wait_acquired()
        try:
            await self._connect()
            assert self._gateway is not None
            keeper = asyncio.create_task(lease.keep(), name="discord-lease")
            done, _ = await asyncio.wait(
                {self._gateway, keeper}, return_when=asyncio.FIRST_COMPLETED
            )
            if keeper in done:
                await self.client.close()  # never run a shard another process may run now
                with contextlib.suppress(BaseException):
                    await self._gateway
                keeper.result()  # LeaseLost
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            self._gateway.result()
        except LeaseLost as exc:
            log.error("discord disconnected: lost the shard lease", extra={"reason": str(exc)})
            raise DiscordUnavailable(f"lost the Discord shard lease: {exc}") from None
        finally:
            await lease.release()

    async def _connect(self) -> None:
        """Log in and start the gateway connection (`_gateway`)."""
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
        self._gateway = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        self._connected.set()

    @property
    def connected(self) -> bool:
        """Whether this part has connected (with a lease: whether it got its shards)."""
        return self._connected.is_set()

    async def wait_until_ready(self) -> None:
        """Return once the gateway session is up (READY and guilds received)."""
        assert self._task is not None
        await self._until(self._connected.wait())
        await self._until(self.client.wait_until_ready())

    async def _until(self, step: Any) -> None:
        """Await `step` unless the part ends first (then say why)."""
        assert self._task is not None
        waiter = asyncio.ensure_future(step)
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
            if self._task is not None:  # still waiting for the shards' lease
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
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
        tasks: list[asyncio.Task[None] | None] = [self._gateway, self._task]
        for running in tasks:  # the leased run also lets go of its lease
            if running is None:
                continue
            try:
                await asyncio.wait_for(asyncio.shield(running), timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                running.cancel()
                with contextlib.suppress(BaseException):
                    await running
            except Exception:
                log.debug("gateway task ended with an error during stop", exc_info=True)

    async def notify(
        self, reply_to: dict[str, Any], text: str, /, *, layout: Layout | None = None
    ) -> None:
        """DM the person named in `reply_to` (an OAuth flow completed, a scheduled post
        failed): `layout` as embeds with its buttons, else the text.

        If their DMs are closed, the note goes to the channel they asked from, with a mention.
        `reply_to` may use this adapter's keys (`user`, `channel`, `guild`) or the core's
        (`user_id`, `channel_id`, `workspace_id`), which is what a link started in chat stores.
        """
        client = self.client
        user_id = int(reply_to.get("user") or reply_to["user_id"])
        try:
            dm = await client.create_dm(discord.Object(id=user_id))
            # The DM is the requester's own: a sink on it needs no requester object.
            person = cast("discord.abc.User", discord.Object(id=user_id))
            sink = ChannelSink(channel=dm, requester=person, client=client, is_dm=True)
            server = str(reply_to.get("guild") or reply_to.get("workspace_id") or "")
            sink.guild = server if server.isdigit() else None  # its buttons act there
            await sink.send(Reply(text, layout=layout))
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
