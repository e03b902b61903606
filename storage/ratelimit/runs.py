"""One agent run per chat user at a time, across replicas: a Redis key per running user.

`SET key token NX PX ttl` claims the slot; a compare-and-delete script gives it back,
so a slot that outlived its ttl and was claimed again is never freed by the old run.
While Redis is down the slots fall back to this process (chat fails open, as the
message rates do).
"""

from __future__ import annotations

import asyncio
import secrets

from storage.ratelimit.fallback import OUTAGE_ERRORS, Outage
from storage.redis import RedisHandle

# Free the slot only if it still holds our token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RunSlots:
    """Claims and frees the per-user "a run is in progress" slot."""

    def __init__(self, *, redis: RedisHandle, outage: Outage, call_timeout: float) -> None:
        self._redis = redis
        self._outage = outage
        self._call_timeout = call_timeout
        self._local: set[str] = set()

    def _key(self, workspace_id: int, chat_user_id: int) -> str:
        return self._redis.key("run", f"{{w{workspace_id}}}", f"u{chat_user_id}")

    async def claim(self, workspace_id: int, chat_user_id: int, ttl: float) -> str | None:
        """A token for the slot, or None when a run of this user is already going."""
        key, token = self._key(workspace_id, chat_user_id), secrets.token_hex(8)
        if not self._outage.skip():
            try:
                async with asyncio.timeout(self._call_timeout):
                    got = await self._redis.client.set(key, token, nx=True, px=int(ttl * 1000))
            except OUTAGE_ERRORS as exc:
                self._outage.failed(exc)
            else:
                self._outage.recovered()
                return token if got else None
        if key in self._local:
            return None
        self._local.add(key)
        return "local:" + token

    async def release(self, workspace_id: int, chat_user_id: int, token: str) -> None:
        """Free the slot if it is still ours (best effort: the ttl frees it otherwise)."""
        key = self._key(workspace_id, chat_user_id)
        if token.startswith("local:"):
            self._local.discard(key)
            return
        try:
            async with asyncio.timeout(self._call_timeout):
                await self._redis.client.eval(_RELEASE, 1, key, token)  # type: ignore[misc]
        except OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
