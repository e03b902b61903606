"""Deliver a daily digest into the channel that asked for it, on its own front-end.

The worker may run in a process with no chat connection of its own (the
`worker` Procfile role), so each front-end is reached through its HTTP API:
Slack through the adapter's Web API client, Discord through its REST API, and
the local shell through its notifier.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from agent.digest_content import Digest
from storage.digests import Workspace

if TYPE_CHECKING:
    from bot.notify import Notifiers
    from bot.slack import SlackAdapter

log = logging.getLogger(__name__)


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
    ) -> None:
        self._slack = slack
        self._notifiers = notifiers
        self._discord_token = discord_token
        self._discord_api_base = discord_api_base
        self._http = http

    async def __call__(self, workspace: Workspace, channel_id: str, digest: Digest) -> str:
        if workspace.frontend == "slack":
            from bot.slack.digest import post_digest

            adapter = self._slack
            if adapter is None:
                raise DigestUndeliverable("Slack is not configured")
            client = await adapter.team_client(team_id=workspace.external_id)
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
