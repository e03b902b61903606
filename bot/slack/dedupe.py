"""De-duplication across replicas: a retried event or a replayed command never runs twice.

Slack re-sends an event (with `X-Slack-Retry-Num`) when it did not get a fast
200; the same `event_id` may land on another replica. A signed slash command
can be replayed by anyone who saw it while its timestamp is within the
signature window; its `trigger_id` is unique per invocation. One `SET NX EX` in
Redis decides who handles it.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from storage.redis import RedisHandle

log = logging.getLogger(__name__)

# Slack retries for about an hour at most (immediately, after 1 minute, after 5).
DEFAULT_TTL_SECONDS = 2 * 3600
# A signed request is accepted while its timestamp is within 5 minutes of our clock,
# either side: a replay can arrive up to 10 minutes after the first delivery.
COMMAND_TTL_SECONDS = 2 * 5 * 60


class EventDeduper:
    """Claims event ids; only the first claim of an id wins."""

    def __init__(self, *, redis: RedisHandle, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def claim(self, event_id: str) -> bool:
        """True if this call is the first to see `event_id`."""
        return await self._claim(self._redis.key("slack", "event", event_id), self._ttl)

    async def claim_command(self, trigger_id: str) -> bool:
        """True if this call is the first to see a slash command's `trigger_id`."""
        return await self._claim(
            self._redis.key("slack", "command", trigger_id), COMMAND_TTL_SECONDS
        )

    async def claim_approval(self, channel: str, message_ts: str) -> bool:
        """True for the first decision on an approval message (double clicks, two replicas)."""
        return await self._claim(
            self._redis.key("slack", "approval", channel, message_ts), self._ttl
        )

    async def _claim(self, key: str, ttl: int) -> bool:
        try:
            won = await self._redis.client.set(key, b"1", nx=True, ex=ttl)
        except RedisError:
            # Without Redis we cannot tell; answering is better than going silent.
            log.warning("dedupe unavailable; handling it", exc_info=True)
            return True
        return bool(won)
