"""Deliver a daily digest into the channel that asked for it, on its own front-end.

The worker may run in a process with no chat connection of its own (the
`worker` Procfile role), so each front-end is reached through its HTTP API:
Slack through the adapter's Web API client, Discord through its REST API, and
the local shell through its notifier.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx

from bot.core.messages import Reply
from storage.digests import Workspace

if TYPE_CHECKING:
    from bot.assembly import Assembly

log = logging.getLogger(__name__)


class DigestUndeliverable(Exception):
    """The digest's front-end is not configured in this process."""


class DigestPoster:
    """`agent.digests.Post`: (workspace, channel, text) -> a reference to the posted message."""

    def __init__(self, assembly: Assembly, *, http: httpx.AsyncClient | None = None) -> None:
        self._assembly = assembly
        self._http = http

    async def __call__(self, workspace: Workspace, channel_id: str, text: str) -> str:
        if workspace.frontend == "slack":
            adapter = self._assembly.slack
            if adapter is None:
                raise DigestUndeliverable("Slack is not configured")
            return await adapter.post_to_channel(
                team_id=workspace.external_id, channel=channel_id, reply=Reply(text)
            )
        if workspace.frontend == "discord":
            return await self._post_discord(channel_id, text)
        if workspace.frontend == "local":
            delivered = await self._assembly.services.notifiers.notify(
                "local", {"channel": channel_id}, text
            )
            if not delivered:
                raise DigestUndeliverable("no local shell is running")
            return "local"
        raise DigestUndeliverable(f"unknown front-end {workspace.frontend!r}")

    async def _post_discord(self, channel_id: str, text: str) -> str:
        from bot.discord.text import split_message

        settings = self._assembly.settings
        if settings.discord_token is None:
            raise DigestUndeliverable("Discord is not configured")
        headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
        url = f"{settings.discord_api_base.rstrip('/')}/channels/{channel_id}/messages"
        client = self._http or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        try:
            first = ""
            for part in split_message(text):
                response = await client.post(
                    url,
                    headers=headers,
                    # Digest text quotes platform titles: never let it ping anyone.
                    json={"content": part, "allowed_mentions": {"parse": []}},
                )
                response.raise_for_status()
                first = first or str(response.json().get("id", ""))
            return first
        finally:
            if self._http is None:
                await client.aclose()
