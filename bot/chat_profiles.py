"""What each chat platform says of a user's time zone (scheduled posts).

Each front-end that knows it registers a lookup (Slack: `users.info`'s `tz`); the others
say nothing, and the person sets a zone with `timezone Area/City`. A lookup that
fails answers "nothing known" (never an error in chat: the person is asked).
Answers are cached for ten minutes (Slack rate-limits users.info).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from cachetools import TTLCache

from agent.context import ChatProfile
from storage.identity import Identity

log = logging.getLogger(__name__)

Lookup = Callable[[str, str], Awaitable[ChatProfile]]
"""(workspace external id, user external id) -> what the platform says of the user."""


class ChatProfiles:
    """Front-end name -> its lookup; `lookup` is `agent.context.ProfileLookup`."""

    def __init__(self, *, ttl_seconds: float = 600.0, maxsize: int = 10_000) -> None:
        self._by_frontend: dict[str, Lookup] = {}
        self._cache: TTLCache[tuple[str, str, str], ChatProfile] = TTLCache(maxsize, ttl_seconds)

    def register(self, frontend: str, lookup: Lookup) -> None:
        self._by_frontend[frontend] = lookup

    async def lookup(self, identity: Identity) -> ChatProfile:
        found = self._by_frontend.get(identity.frontend)
        if found is None:
            return ChatProfile()
        key = (identity.frontend, identity.workspace_external_id, identity.user_external_id)
        cached: ChatProfile | None = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            profile = await found(identity.workspace_external_id, identity.user_external_id)
        except Exception as exc:  # a convenience: the person is asked instead
            log.warning(
                "chat profile lookup failed",
                extra={"frontend": identity.frontend, "error": type(exc).__name__},
            )
            return ChatProfile()
        self._cache[key] = profile
        return profile
