"""Files shared in Slack as streaming `Attachment`s.

A shared video can be gigabytes: it is read from `url_private_download` with the
bot token in chunks, straight into whoever consumes `Attachment.open()`. The
locator carries no token, so a durable job can store it and re-open the file
later through `SlackFiles.stream` (the token is looked up at that moment, which
also picks up a rotated token).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from agent.sources import SLACK_FILE_HOSTS, DownloadHosts
from bot.core.messages import Attachment

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024

TokenLookup = Callable[[str], Awaitable[str | None]]


class SlackFileError(Exception):
    """A Slack file could not be read (gone, not allowed, or not where Slack said)."""


class SlackFiles:
    """Builds attachments from Slack file objects and streams their bytes."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        token_for_team: TokenLookup,
        api_base: str,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self._http = http
        self._token_for_team = token_for_team
        self._chunk_bytes = chunk_bytes
        # The bot token is only ever sent to Slack's file host (or to the host
        # the Web API is configured at, for self-hosted fakes and tests).
        self._hosts = DownloadHosts(SLACK_FILE_HOSTS, api_bases=[api_base])

    async def attachments(
        self, files: list[Mapping[str, Any]], *, team_id: str, client: AsyncWebClient
    ) -> tuple[Attachment, ...]:
        """Attachments for an event's `files`, completing partial objects with `files.info`."""
        out: list[Attachment] = []
        for file in files:
            info: Mapping[str, Any] = file
            if file.get("file_access") == "check_file_info" or not file.get("url_private_download"):
                response = await client.files_info(file=str(file.get("id", "")))
                info = response.get("file") or {}
            url = info.get("url_private_download")
            if not url:
                log.info("shared file has no download url", extra={"file": file.get("id")})
                continue
            out.append(self.attachment(info, team_id=team_id))
        return tuple(out)

    def attachment(self, file: Mapping[str, Any], *, team_id: str) -> Attachment:
        """An attachment whose `open()` streams the file; its locator holds no secret."""
        size = file.get("size")
        locator = {
            "kind": "slack",
            "team": team_id,
            "file_id": file.get("id"),
            "url": file["url_private_download"],
            "size": int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
            "mime_type": file.get("mimetype"),
        }
        return Attachment(
            name=str(file.get("name") or file.get("title") or file.get("id") or "file"),
            size=locator["size"],
            mime_type=locator["mime_type"],
            open=functools.partial(self.stream, locator),
            locator=locator,
        )

    async def stream(self, locator: Mapping[str, Any]) -> AsyncIterator[bytes]:
        """Yield the file's bytes chunk by chunk (what `Attachment.open()` returns)."""
        url = str(locator.get("url") or "")
        if locator.get("kind") != "slack" or not self._hosts.allows_name(url):
            raise SlackFileError("not a Slack file this bot may download")
        token = await self._token_for_team(str(locator.get("team") or ""))
        if token is None:
            raise SlackFileError("the app is not installed in that workspace any more")
        # Every redirect hop is checked too, and the token does not follow one to another origin.
        async with self._hosts.get(
            self._http, url, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            if response.status_code != 200:
                raise SlackFileError(f"Slack answered {response.status_code} for the file")
            if response.headers.get("content-type", "").startswith("text/html"):
                # Slack serves its login page (200, HTML) when the token may not read the file.
                raise SlackFileError("Slack did not allow the bot to read the file")
            async for chunk in response.aiter_bytes(self._chunk_bytes):
                yield chunk
