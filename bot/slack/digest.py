"""Post a digest into a Slack channel: Block Kit with the chart as the message's file.

Why `files_upload_v2` with the blocks, rather than an `image` block from our signed
media route: the upload (files.getUploadURLExternal, the bytes, then
files.completeUploadExternal with `channel_id` and `blocks`) makes one message that
carries both the blocks and the chart, visible only to the channel's members. The
media route would need a public PUBLIC_BASE_URL that Slack's servers can fetch, and
the chart's figures would sit behind a bearer link. Where the upload is refused
(e.g. an installation without `files:write`), the blocks post without the chart.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.digest_content import Digest
from bot.digest_layout import CHART_NAME, SLACK_MAX_TEXT, fit, slack_blocks

log = logging.getLogger(__name__)


async def post_digest(client: AsyncWebClient, channel: str, digest: Digest) -> str:
    """Post the digest; returns `channel:ts` (or `channel:file:F…` before Slack has
    shared the upload). Relink prompts then go to each owner privately."""
    from bot.slack.sink import message_ref

    fallback = fit(digest.text(), SLACK_MAX_TEXT)
    ref = None
    if digest.chart and digest.chart_days is not None:
        from bot.digest_chart import ALT_TEXT, render_png

        png = render_png(digest.chart, digest.chart_days)
        blocks = slack_blocks(digest, chart_attached=True)
        try:
            done = await client.files_upload_v2(
                channel=channel,
                file=png,
                filename=CHART_NAME,
                title="Views per day, last 14 days",
                alt_txt=ALT_TEXT,
                blocks=json.dumps(blocks),
            )
            ref = _upload_ref(channel, done.data if isinstance(done.data, dict) else {})
        except SlackApiError as exc:  # refused before anything was shared: post without it
            log.warning(
                "digest chart not uploaded", extra={"error": str(exc.response.get("error"))}
            )
    if ref is None:
        blocks = slack_blocks(digest, chart_attached=False)
        posted = await client.chat_postMessage(channel=channel, text=fallback, blocks=blocks)
        ref = message_ref(channel, str(posted["ts"]))
    for relink in digest.relinks:
        await _tell_privately(client, channel, relink.owner_external_id, relink.message)
    return ref


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
