"""StatusBoard for the worker: post and edit a job's status message on its front-end.

A worker may run in a process with no chat connection (the `worker` role), so it
reaches each front-end through its HTTP API with the bot's own credentials: Slack
through the adapter's Web API client (chat.postMessage, then chat.update), Discord
through its REST API (a channel message, then edits to it: never the interaction
token, which lapses after 15 minutes), the local shell through its notifier.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from bot.core.messages import Reply
from bot.core.text import truncate

if TYPE_CHECKING:
    from bot.notify import Notifiers
    from bot.slack import SlackAdapter
    from bot.slack.sink import SlackReplySink

log = logging.getLogger(__name__)


class NoRoute(Exception):
    """The job's front-end is not configured in this process."""


class JobBoard:
    """`agent.jobs.status.StatusBoard` over every configured front-end."""

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
        self._discord_api_base = discord_api_base.rstrip("/")
        self._http = http

    async def post(self, reply_to: dict[str, Any], text: str) -> str | None:
        frontend = reply_to.get("frontend")
        if frontend == "slack":
            sink = await self._slack_sink(reply_to)
            ref: str = await sink.send(Reply(text))
            return ref
        if frontend == "discord":
            data = await self._discord("POST", _channel(reply_to), text)
            return str(data.get("id") or "") or None
        if frontend == "local":
            await self._notifiers.notify("local", reply_to, text)
            return None  # the shell prints lines; it has nothing to edit
        raise NoRoute(f"unknown front-end {frontend!r}")

    async def edit(self, reply_to: dict[str, Any], message_ref: str, text: str) -> None:
        frontend = reply_to.get("frontend")
        if frontend == "slack":
            sink = await self._slack_sink(reply_to)
            await sink.update(message_ref, Reply(text))
            return
        if frontend == "discord":
            await self._discord("PATCH", _channel(reply_to), text, message_id=message_ref)
            return
        raise NoRoute(f"cannot edit messages on {frontend!r}")

    async def _slack_sink(self, reply_to: dict[str, Any]) -> SlackReplySink:
        if self._slack is None:
            raise NoRoute("Slack is not configured")
        thread = reply_to.get("thread_id")
        return await self._slack.channel_sink(
            team_id=str(reply_to.get("workspace_id") or ""),
            channel=_channel(reply_to),
            thread_ts=str(thread) if thread else None,
        )

    async def _discord(
        self, method: str, channel: str, text: str, *, message_id: str | None = None
    ) -> dict[str, Any]:
        if self._discord_token is None:
            raise NoRoute("Discord is not configured")
        if not channel.isdigit() or (message_id is not None and not message_id.isdigit()):
            raise NoRoute("not a Discord channel or message id")
        url = f"{self._discord_api_base}/channels/{channel}/messages"
        if message_id is not None:
            url += f"/{message_id}"
        client = self._http or httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        try:
            response = await client.request(
                method,
                url,
                headers={"Authorization": f"Bot {self._discord_token}"},
                # Job text quotes titles people wrote: never let it ping anyone.
                json={"content": truncate(text), "allowed_mentions": {"parse": []}},
            )
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data
        finally:
            if self._http is None:
                await client.aclose()


def _channel(reply_to: dict[str, Any]) -> str:
    return str(reply_to.get("channel_id") or "")
