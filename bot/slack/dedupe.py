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
        try:
            won = await self._redis.client.set(
                self._redis.key("slack", "event", event_id), b"1", nx=True, ex=self._ttl
            )
        except RedisError:
            # Without Redis we cannot tell; answering is better than going silent.
            log.warning("event dedupe unavailable; handling the event", exc_info=True)
            return True
        return bool(won)
