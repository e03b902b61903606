"""One agent run per chat user at a time, across replicas: a Redis key per running user.

The key is claimed (`SET NX PX`) by the `ADMIT` script and freed by compare-and-delete
in `FINISH` (see `scripts`), so a slot that outlived its ttl and was claimed again is
never freed by the old run. While Redis is down the slots fall back to this process
(chat fails open, as the message rates do).
"""

from __future__ import annotations

import secrets

from storage.redis import RedisHandle


class RunSlots:
    """Names the per-user "a run is in progress" slot, and keeps the per-process ones."""

    def __init__(self, *, redis: RedisHandle) -> None:
        self._redis = redis
        self._local: set[str] = set()

    def key(self, workspace_id: int, chat_user_id: int) -> str:
        return self._redis.key("run", f"{{w{workspace_id}}}", f"u{chat_user_id}")

    @staticmethod
    def token() -> str:
        return secrets.token_hex(8)

    def claim_local(self, key: str) -> str | None:
        """A process-local token for the slot, or None while this process runs one."""
        if key in self._local:
            return None
        self._local.add(key)
        return "local:" + self.token()

    def release_local(self, key: str, token: str) -> bool:
        """Free a process-local slot; False when `token` is not a local one."""
        if not token.startswith("local:"):
            return False
        self._local.discard(key)
        return True
