"""Post a digest into a Discord channel over REST: one message of embeds, the chart
attached (multipart `files[0]`) and shown as the main embed's image; then each
relink prompt privately, in a DM to the account's owner."""

from __future__ import annotations

import json
import logging

import httpx

from agent.digest_content import Digest
from bot.digest_layout import CHART_NAME, discord_message

log = logging.getLogger(__name__)


async def post_digest(
    client: httpx.AsyncClient, api: str, headers: dict[str, str], channel_id: str, digest: Digest
) -> str:
    """The posted message's id."""
    url = f"{api}/channels/{channel_id}/messages"
    if digest.chart and digest.chart_days is not None:
        from bot.digest_chart import ALT_TEXT, chart_png

        body = discord_message(digest, chart_attached=True)
        body["attachments"] = [{"id": 0, "filename": CHART_NAME, "description": ALT_TEXT}]
        png = await chart_png(digest.chart, digest.chart_days)
        response = await client.post(
            url,
            headers=headers,
            data={"payload_json": json.dumps(body)},
            files={"files[0]": (CHART_NAME, png, "image/png")},
        )
    else:
        response = await client.post(
            url, headers=headers, json=discord_message(digest, chart_attached=False)
        )
    response.raise_for_status()
    ref = str(response.json().get("id", ""))
    for relink in digest.relinks:
        await _direct_message(client, api, headers, relink.owner_external_id, relink.message)
    return ref


async def _direct_message(
    client: httpx.AsyncClient, api: str, headers: dict[str, str], user_id: str, text: str
) -> None:
    """A DM to one person; the digest is out whatever happens here."""
    try:
        dm = await client.post(
            f"{api}/users/@me/channels", headers=headers, json={"recipient_id": user_id}
        )
        dm.raise_for_status()
        sent = await client.post(
            f"{api}/channels/{dm.json()['id']}/messages",
            headers=headers,
            json={"content": text, "allowed_mentions": {"parse": []}},
        )
        sent.raise_for_status()
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("relink prompt not delivered", extra={"error": type(exc).__name__})
