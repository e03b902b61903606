"""Post a digest into a Slack channel: Block Kit with the chart as the message's file.

Why `files_upload_v2` with the blocks, rather than an `image` block from our signed
media route: the upload (files.getUploadURLExternal, the bytes, then
files.completeUploadExternal with `channel_id` and `blocks`) makes one message that
carries both the blocks and the chart, visible only to the channel's members. The
media route would need a public PUBLIC_BASE_URL that Slack's servers can fetch, and
the chart's figures would sit behind a bearer link. Where the upload is refused
(e.g. an installation without `files:write`, or a thumbnail Slack cannot fetch), the
blocks post without the chart, and then, if need be, without the thumbnails.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.digest_content import Digest
from bot.core.text import fit
from bot.digest_layout import CHART_NAME, slack_blocks
from bot.slack.blocks import LIMITS

log = logging.getLogger(__name__)


async def post_digest(client: AsyncWebClient, channel: str, digest: Digest) -> str:
    """Post the digest; returns `channel:ts` (or `channel:file:F…` before Slack has
    shared the upload). Relink prompts then go to each owner privately."""
    ref = None
    if digest.chart and digest.chart_days is not None:
        ref = await _with_thumbnails_if_possible(
            lambda thumbnails: _upload(client, channel, digest, thumbnails=thumbnails)
        )
    if ref is None:
        ref = await _with_thumbnails_if_possible(
            lambda thumbnails: _message(client, channel, digest, thumbnails=thumbnails),
            fallback_ok=False,
        )
    assert ref is not None
    for relink in digest.relinks:
        await _tell_privately(client, channel, relink.owner_external_id, relink.message)
    return ref


async def _with_thumbnails_if_possible(
    post: Callable[[bool], Awaitable[str]], *, fallback_ok: bool = True
) -> str | None:
    """`post` with the top posts' thumbnails, then without them if Slack refused the
    blocks (it could not fetch one). Another refusal is None where a fallback remains
    (`fallback_ok`: the upload), and raised where none does."""
    try:
        try:
            return await post(True)
        except SlackApiError as exc:
            if exc.response.get("error") != "invalid_blocks":
                raise
            return await post(False)
    except SlackApiError as exc:
        if not fallback_ok:
            raise
        # Refused before anything was shared (e.g. no files:write): post without the chart.
        log.warning("digest chart not uploaded", extra={"error": str(exc.response.get("error"))})
        return None


async def _upload(client: AsyncWebClient, channel: str, digest: Digest, *, thumbnails: bool) -> str:
    from bot.digest_chart import ALT_TEXT, chart_png

    assert digest.chart_days is not None
    blocks = slack_blocks(digest, chart_attached=True, thumbnails=thumbnails)
    done = await client.files_upload_v2(
        channel=channel,
        file=await chart_png(digest.chart, digest.chart_days),
        filename=CHART_NAME,
        title="Views per day, last 14 days",
        alt_txt=ALT_TEXT,
        blocks=json.dumps(blocks),
    )
    return _upload_ref(channel, done.data if isinstance(done.data, dict) else {})


async def _message(
    client: AsyncWebClient, channel: str, digest: Digest, *, thumbnails: bool
) -> str:
    from bot.slack.sink import message_ref

    blocks = slack_blocks(digest, chart_attached=False, thumbnails=thumbnails)
    text = fit(digest.text(), LIMITS["text"])
    posted = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    return message_ref(channel, str(posted["ts"]))


def _upload_ref(channel: str, data: dict[str, Any]) -> str:
    """The message the upload made, from the file's shares, else the file's id."""
    files = data.get("files") or []
    first = files[0] if files and isinstance(files[0], dict) else {}
    shares = first.get("shares") or {}
    for scope in ("public", "private"):
        found = (shares.get(scope) or {}).get(channel) or []
        if found and isinstance(found[0], dict) and found[0].get("ts"):
            return f"{channel}:{found[0]['ts']}"
    return f"{channel}:file:{first.get('id', '')}"


async def _tell_privately(client: AsyncWebClient, channel: str, user: str, text: str) -> None:
    """Ephemeral in the digest's channel, else a DM; the digest is out either way."""
    try:
        await client.chat_postEphemeral(channel=channel, user=user, text=text)
        return
    except SlackApiError:
        pass
    try:
        await client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        log.warning("relink prompt not delivered", extra={"error": str(exc.response.get("error"))})
