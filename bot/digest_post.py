"""Deliver a daily digest into the channel that asked for it, on its own front-end.

The worker may run in a process with no chat connection of its own (the
`worker` Procfile role), so each front-end is reached through its HTTP API:
Slack through the adapter's Web API client, Discord through its REST API, and
the local shell through its notifier.

Deliveries run as parallel jobs, so two bounds keep them polite:

* **each channel's posting rate** (`ChannelPacer`): Slack takes about one message a
  second per channel, Discord five per five seconds. Every message waits for a slot
  in a moving window on Redis that all workers share. Why not the engine's
  per-entrypoint concurrency: it bounds jobs, not messages, and is one number for all
  channels; a window per channel lets a thousand channels post at once while two
  messages into one channel still go out a second apart.
* **deliveries per workspace** (`workspace_slot`, `DIGEST_PER_WORKSPACE`): a job that
  finds its workspace's slots taken hands its delivery to a fresh job due in a moment
  and ends, freeing its worker for another workspace's digest instead of waiting (a
  fresh job, not the engine's retry: waiting for a slot is no failure, and must not
  use up the retries a real failure gets).

Both fail open while Redis is down: a bound spreads the work out; it never stops it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

from agent.digest_content import Digest
from storage.digests import Workspace
from storage.ratelimit import Budgets, Rate

if TYPE_CHECKING:
    from bot.notify import Notifiers
    from bot.slack import SlackAdapter

log = logging.getLogger(__name__)

# Messages into one channel per moving window, by front-end (the platforms' own rules).
POSTING_RATES: dict[str, Rate] = {"slack": Rate(1, 1), "discord": Rate(5, 5)}
# How long one delivery may hold its workspace's slot if its worker dies holding it.
SLOT_LEASE_SECONDS = 300.0


class ChannelPacer:
    """Waits for a free posting slot in a channel; the slots are shared by every worker."""

    def __init__(
        self,
        budgets: Budgets,
        *,
        max_wait: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._budgets = budgets
        self._max_wait = max_wait
        self._sleep = sleep

    async def wait(self, frontend: str, channel_id: str) -> None:
        """Return once a message may go into the channel (after `max_wait` at worst:
        the platform's own 429 handling takes over from there)."""
        rate = POSTING_RATES.get(frontend)
        if rate is None:
            return
        waited = 0.0
        while waited < self._max_wait:
            decision = await self._budgets.pace(f"post:{frontend}:{channel_id}", rate)
            if decision.allowed:
                return
            pause = min(max(decision.retry_after, 0.01), self._max_wait - waited)
            await self._sleep(pause)
            waited += pause


class WorkspaceBusy(Exception):
    """All of the workspace's delivery slots are taken; try again in `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__("the workspace's other digests are being delivered")
        self.delay = delay


@asynccontextmanager
async def workspace_slot(budgets: Budgets, workspace_id: int, *, limit: int) -> AsyncIterator[None]:
    """Hold one of the workspace's `limit` delivery slots; WorkspaceBusy while all are taken."""
    claim = await budgets.claim_slot(f"digest:w{workspace_id}", limit=limit, ttl=SLOT_LEASE_SECONDS)
    if not claim.granted:
        # A slot usually frees within a delivery's time, long before the lease ends.
        raise WorkspaceBusy(min(claim.retry_after, 0.5 + random.random()))
    try:
        yield
    finally:
        await budgets.release_slot(claim)


class DigestUndeliverable(Exception):
    """The digest's front-end is not configured in this process."""


class DigestPoster:
    """`agent.digests.Post`: (workspace, channel, digest) -> a reference to the posted message."""

    def __init__(
        self,
        *,
        slack: SlackAdapter | None,
        notifiers: Notifiers,
        discord_token: str | None,
        discord_api_base: str,
        http: httpx.AsyncClient | None = None,
        pacer: ChannelPacer | None = None,
    ) -> None:
        self._slack = slack
        self._notifiers = notifiers
        self._discord_token = discord_token
        self._discord_api_base = discord_api_base
        self._http = http
        self._pacer = pacer

    async def _pace(self, frontend: str, channel_id: str) -> None:
        if self._pacer is not None:
            await self._pacer.wait(frontend, channel_id)

    async def __call__(self, workspace: Workspace, channel_id: str, digest: Digest) -> str:
        if workspace.frontend == "slack":
            from bot.slack.digest import post_digest

            adapter = self._slack
            if adapter is None:
                raise DigestUndeliverable("Slack is not configured")
            client = await adapter.team_client(team_id=workspace.external_id)
            await self._pace("slack", channel_id)
            return await post_digest(client, channel_id, digest)
        if workspace.frontend == "discord":
            return await self._post_discord(workspace, channel_id, digest)
        if workspace.frontend == "local":
            delivered = await self._notifiers.notify(
                "local", {"channel": channel_id}, digest.text()
            )
            if not delivered:
                raise DigestUndeliverable("no local shell is running")
            return "local"
        raise DigestUndeliverable(f"unknown front-end {workspace.frontend!r}")

    async def _post_discord(self, workspace: Workspace, channel_id: str, digest: Digest) -> str:
        from bot.discord.digest import post_digest

        if self._discord_token is None:
            raise DigestUndeliverable("Discord is not configured")
        if not channel_id.isdigit():
            raise DigestUndeliverable("not a Discord channel id")
        headers = {"Authorization": f"Bot {self._discord_token}"}
        api = self._discord_api_base.rstrip("/")
        channel_url = f"{api}/channels/{channel_id}"
        client = self._http or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        try:
            # One bot token reaches every guild the bot is in: the channel must belong
            # to the server (or the DM) whose figures these are, or nothing is posted.
            found = await client.get(channel_url, headers=headers)
            if found.status_code in (403, 404):
                raise DigestUndeliverable("the bot cannot see that channel")
            found.raise_for_status()
            if not _belongs_to(found.json(), workspace.external_id):
                raise DigestUndeliverable("that channel is not in the workspace's server")
            await self._pace("discord", channel_id)
            return await post_digest(client, api, headers, channel_id, digest)
        finally:
            if self._http is None:
                await client.aclose()


def _belongs_to(channel: dict[str, Any], workspace_external_id: str) -> bool:
    """Is this Discord channel object in the guild (or the person's DM) of the workspace?"""
    from bot.discord.convert import DM_WORKSPACE_PREFIX

    if workspace_external_id.startswith(DM_WORKSPACE_PREFIX):
        user = workspace_external_id.removeprefix(DM_WORKSPACE_PREFIX)
        recipients = channel.get("recipients") or []
        return channel.get("guild_id") is None and any(
            str(r.get("id")) == user for r in recipients if isinstance(r, dict)
        )
    return str(channel.get("guild_id") or "") == workspace_external_id
