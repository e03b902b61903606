"""Who administers a Slack workspace: its admins and owners, as `users.info` says."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent.context import AdminCheck
from bot.slack.api_error import api_error

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


def admin_check(client: AsyncWebClient, user_id: str) -> AdminCheck:
    """A check asked only when a command needs it (one `users.info` call then)."""

    async def check() -> bool:
        try:
            response = await client.users_info(user=user_id)
        except api_error() as exc:
            # Not an admin as far as we can tell: refuse rather than guess.
            log.info("users.info failed", extra={"error": exc.response.get("error")})
            return False
        user = response.get("user") or {}
        return bool(user.get("is_admin") or user.get("is_owner"))

    return check
