"""Private answers kept for a while, so their reader can post them to the channel.

A "Share to channel" button carries only an opaque id: Slack's button value and
Discord's custom id are too small for an answer, and an ephemeral message cannot
be read back from the platform. The answer waits in Redis, bound to the person it
was for, until it is shared (once) or expires.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from agent.layout import Layout
from bot.core.messages import Reply
from storage.redis import RedisHandle

SHARE_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class Owner:
    """Who may share an answer: the person it was written for."""

    frontend: str
    workspace_id: str
    user_id: str


def _key(redis: RedisHandle, share_id: str) -> str:
    return redis.key("share", share_id)


async def keep(redis: RedisHandle, owner: Owner, reply: Reply) -> str:
    """Store `reply` for `owner`; returns the id a share button carries."""
    share_id = secrets.token_urlsafe(12)
    record = {
        "owner": [owner.frontend, owner.workspace_id, owner.user_id],
        "text": reply.text,
        "layout": reply.layout.to_json() if reply.layout else None,
    }
    await redis.client.set(_key(redis, share_id), json.dumps(record), ex=SHARE_TTL_SECONDS)
    return share_id


async def take(redis: RedisHandle, owner: Owner, share_id: str) -> Reply | None:
    """The answer kept under `share_id` if `owner` may share it (then it is gone); else None."""
    if not share_id.replace("-", "").replace("_", "").isalnum() or len(share_id) > 32:
        return None
    key = _key(redis, share_id)
    raw = await redis.client.get(key)
    if raw is None:
        return None
    record = json.loads(raw)
    if record["owner"] != [owner.frontend, owner.workspace_id, owner.user_id]:
        return None
    if not await redis.client.delete(key):
        return None  # another click took it first
    layout = Layout.from_json(record["layout"]) if record["layout"] else None
    return Reply(str(record["text"]), layout=layout)
