"""Admins: which chat users administer their workspace, asked of their front-end.

Each front-end registers a check for its name (like `bot.notify.Notifiers`): Slack
asks `users.info` with the workspace's bot token, Discord two REST reads
(`DiscordAdmins`), the local shell's operator is its admin. A front-end with none
registered answers no. In chat, the message's own check is used instead (a Discord
interaction carries the member's permissions).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

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


ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5


class DiscordAdmins:
    """The check for the "discord" front-end: the server's owner, and members whose
    roles grant Manage Server or Administrator.

    Why hand-written: discord.py computes permissions only from its gateway cache,
    which the web role does not have; two REST reads and a bit test do it there.
    """

    def __init__(self, *, http: httpx.AsyncClient, api_base: str, token: str) -> None:
        self._http = http
        self._base = api_base.rstrip("/")
        self._headers = {"Authorization": f"Bot {token}"}

    async def is_admin(self, identity: Identity) -> bool:
        guild_id, user_id = identity.workspace_external_id, identity.user_external_id
        if not guild_id.isdigit():  # a DM "workspace": nobody administers it
            return False
        guild = await self._get(f"/guilds/{guild_id}")
        if guild is None:
            return False
        if str(guild.get("owner_id")) == user_id:
            return True
        member = await self._get(f"/guilds/{guild_id}/members/{user_id}")
        if member is None:
            return False
        held = {guild_id, *(str(r) for r in member.get("roles") or [])}  # @everyone too
        granted = 0
        for role in guild.get("roles") or []:
            if str(role.get("id")) in held:
                granted |= int(role.get("permissions") or 0)
        return bool(granted & (ADMINISTRATOR | MANAGE_GUILD))

    async def _get(self, path: str) -> dict[str, Any] | None:
        response = await self._http.get(self._base + path, headers=self._headers)
        if response.status_code != 200:
            log.info("discord admin lookup refused", extra={"status": response.status_code})
            return None
        found = response.json()
        return found if isinstance(found, dict) else None
