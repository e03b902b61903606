"""Event de-duplication across replicas: a retried event never runs twice.

Slack re-sends an event (with `X-Slack-Retry-Num`) when it did not get a fast
200; the same `event_id` may land on another replica. One `SET NX EX` in Redis
decides who handles it.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from storage.redis import RedisHandle

log = logging.getLogger(__name__)

# Slack retries for about an hour at most (immediately, after 1 minute, after 5).
DEFAULT_TTL_SECONDS = 2 * 3600


class EventDeduper:
    """Claims event ids; only the first claim of an id wins."""

    def __init__(self, *, redis: RedisHandle, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def claim(self, event_id: str) -> bool:
        """True if this call is the first to see `event_id`."""
        return await self._claim(self._redis.key("slack", "event", event_id))

    async def claim_approval(self, channel: str, message_ts: str) -> bool:
        """True for the first decision on an approval message (double clicks, two replicas)."""
        return await self._claim(self._redis.key("slack", "approval", channel, message_ts))

    async def _claim(self, key: str) -> bool:
        try:
            won = await self._redis.client.set(key, b"1", nx=True, ex=self._ttl)
        except RedisError:
            # Without Redis we cannot tell; answering is better than going silent.
            log.warning("dedupe unavailable; handling it", exc_info=True)
            return True
        return bool(won)
