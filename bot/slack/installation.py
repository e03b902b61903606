"""slack_sdk's async installation and OAuth state stores, backed by `storage.slack_installations`.

Only bot tokens are kept (the app asks for no user scopes), so bolt runs these
stores in bot-only mode: `async_find_bot` is what authorizes each request, and
`async_save_bot` is what token rotation calls with the refreshed token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from storage.slack_installations import SlackBot, SlackInstallations

log = logging.getLogger(__name__)


def _expiry(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _installed(ts: float | None) -> datetime:
    return datetime.fromtimestamp(ts, UTC) if ts else datetime.now(UTC)


def _to_record(bot: Bot | Installation) -> SlackBot:
    if not bot.bot_token or not bot.bot_id or not bot.bot_user_id:
        raise ValueError("the installation carries no bot token (the app needs bot scopes)")
    return SlackBot(
        enterprise_id=bot.enterprise_id,
        team_id=bot.team_id,
        bot_id=bot.bot_id,
        bot_user_id=bot.bot_user_id,
        bot_token=bot.bot_token,
        is_enterprise_install=bool(bot.is_enterprise_install),
        app_id=bot.app_id,
        enterprise_name=bot.enterprise_name,
        team_name=bot.team_name,
        bot_scopes=tuple(bot.bot_scopes or ()),
        bot_refresh_token=bot.bot_refresh_token,
        bot_token_expires_at=_expiry(bot.bot_token_expires_at),
        installed_at=_installed(bot.installed_at),
    )


def _to_bot(record: SlackBot) -> Bot:
    return Bot(
        app_id=record.app_id,
        enterprise_id=record.enterprise_id,
        enterprise_name=record.enterprise_name,
        team_id=record.team_id,
        team_name=record.team_name,
        bot_token=record.bot_token,
        bot_id=record.bot_id,
        bot_user_id=record.bot_user_id,
        bot_scopes=list(record.bot_scopes),
        bot_refresh_token=record.bot_refresh_token,
        bot_token_expires_at=(
            int(record.bot_token_expires_at.timestamp()) if record.bot_token_expires_at else None
        ),
        is_enterprise_install=record.is_enterprise_install,
        installed_at=record.installed_at.timestamp(),
    )


class PostgresInstallationStore(AsyncInstallationStore):
    """Bots per workspace in Postgres, bot tokens encrypted at rest."""

    def __init__(self, *, installations: SlackInstallations) -> None:
        self._installations = installations

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        """Called by the OAuth callback: store the bot and log who installed it."""
        await self._installations.save_bot(
            _to_record(installation), installer_user_id=installation.user_id
        )
        log.info(
            "slack app installed",
            extra={"team": installation.team_id, "enterprise": installation.enterprise_id},
        )

    async def async_save_bot(self, bot: Bot) -> None:
        """Called after a token rotation with the refreshed token."""
        await self._installations.save_bot(_to_record(bot))

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        record = await self._installations.find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=bool(is_enterprise_install),
        )
        return _to_bot(record) if record is not None else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The workspace's bot as an Installation (no user tokens are ever stored)."""
        record = await self._installations.find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=bool(is_enterprise_install),
        )
        if record is None:
            return None
        installer = await self._installations.latest_installer(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=bool(is_enterprise_install),
        )
        if user_id is not None and installer != user_id:
            return None
        bot = _to_bot(record)
        return Installation(
            app_id=bot.app_id,
            enterprise_id=bot.enterprise_id,
            enterprise_name=bot.enterprise_name,
            team_id=bot.team_id,
            team_name=bot.team_name,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            bot_refresh_token=bot.bot_refresh_token,
            bot_token_expires_at=bot.bot_token_expires_at,
            user_id=installer or "",
            is_enterprise_install=bot.is_enterprise_install,
            installed_at=bot.installed_at,
        )

    async def async_delete_bot(
        self, *, enterprise_id: str | None, team_id: str | None, **_: Any
    ) -> None:
        await self._installations.delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        # Only bots are stored: deleting the installation of the workspace removes its bot.
        if user_id is None:
            await self._installations.delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._installations.delete_bot(enterprise_id=enterprise_id, team_id=team_id)


class PostgresOAuthStateStore(AsyncOAuthStateStore):
    """Single-use, expiring OAuth `state` values for /slack/install, shared by all replicas."""

    def __init__(self, *, installations: SlackInstallations) -> None:
        self._installations = installations

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await self._installations.issue_state()

    async def async_consume(self, state: str) -> bool:
        return await self._installations.consume_state(state)
