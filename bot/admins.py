"""Admins: which chat users administer their workspace, asked of their front-end.

Each front-end registers a check for its name (like `bot.notify.Notifiers`): Slack
asks `users.info` with the workspace's bot token, the local shell's operator is its
admin. A front-end with none registered (Discord outside an interaction, whose
permissions come with the interaction itself) answers no: the companion API then
refuses, and the chat command still works there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from storage.identity import Identity

log = logging.getLogger(__name__)

Check = Callable[[Identity], Awaitable[bool]]


class Admins:
    """A registry: front-end name -> `async def (identity) -> bool`."""

    def __init__(self) -> None:
        self._by_frontend: dict[str, Check] = {}

    def register(self, frontend: str, check: Check) -> None:
        self._by_frontend[frontend] = check

    async def is_admin(self, identity: Identity) -> bool:
        """True only when the person's front-end says so; errors answer no (logged)."""
        check = self._by_frontend.get(identity.frontend)
        if check is None:
            return False
        try:
            return await check(identity)
        except Exception:
            log.warning("admin check failed", extra={"frontend": identity.frontend}, exc_info=True)
            return False


async def local_operator(identity: Identity | None = None) -> bool:
    """The local shell's person runs the bot: the admin of its one workspace."""
    return True
