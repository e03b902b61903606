"""Slack installations: bots per workspace (tokens encrypted), install log, OAuth states.

This is the storage side of multi-workspace Slack. The bolt-facing
installation and state stores in `bot.slack.installation` translate slack_sdk's
`Bot`/`Installation` objects to and from `SlackBot` here; this module knows
nothing about Slack libraries. Bot and refresh tokens are encrypted with the
project's `TokenCipher`, bound to `slack_bots/<id>/<column>`, so a ciphertext
copied to another row does not decrypt.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from storage.crypto import Location, TokenCipher
from storage.db import Database
from storage.rotation import row_key

_TABLE = "slack_bots"


@dataclass(frozen=True, slots=True)
class SlackBot:
    """One installed bot: the data a request needs to act in its workspace."""

    enterprise_id: str | None
    team_id: str | None
    bot_id: str
    bot_user_id: str
    bot_token: str
    is_enterprise_install: bool = False
    app_id: str | None = None
    enterprise_name: str | None = None
    team_name: str | None = None
    bot_scopes: tuple[str, ...] = ()
    bot_refresh_token: str | None = None
    bot_token_expires_at: datetime | None = None
    installed_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __repr__(self) -> str:  # never show tokens
        return f"SlackBot(enterprise_id={self.enterprise_id!r}, team_id={self.team_id!r}, bot_id={self.bot_id!r})"


def _key(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool
) -> tuple[str, str]:
    """The stored (enterprise, team) key: org-wide installs are keyed by the org alone."""
    if is_enterprise_install:
        return enterprise_id or "", ""
    return enterprise_id or "", team_id or ""


class SlackInstallations:
    """Postgres-backed bots, install log and OAuth states for one Slack app (client id)."""

    def __init__(
        self,
        *,
        cipher: TokenCipher,
        client_id: str,
        pool: asyncpg.Pool | None = None,
        database: Database | None = None,
    ) -> None:
        # A Database is accepted so the store can be built before the pool opens.
        if (pool is None) == (database is None):
            raise ValueError("give exactly one of pool or database")
        self._given_pool = pool
        self._database = database
        self._cipher = cipher
        self._client_id = client_id

    @property
    def _pool(self) -> asyncpg.Pool:
        if self._given_pool is not None:
            return self._given_pool
        assert self._database is not None
        return self._database.pool

    # --- bots -------------------------------------------------------------------------

    async def save_bot(self, bot: SlackBot, *, installer_user_id: str | None = None) -> int:
        """Insert or replace the workspace's bot (and log the install); returns the row id.

        One transaction: the row id is needed for the ciphertext's binding, so the
        row is upserted first and its tokens written next, before anyone sees it.
        """
        enterprise_id, team_id = _key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        async with self._pool.acquire() as conn, conn.transaction():
            row_id: int = await conn.fetchval(
                """
                INSERT INTO slack_bots (client_id, enterprise_id, team_id, bot_id, bot_user_id)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (client_id, enterprise_id, team_id)
                DO UPDATE SET updated_at = now()
                RETURNING id
                """,
                self._client_id,
                enterprise_id,
                team_id,
                bot.bot_id,
                bot.bot_user_id,
            )
            token_at = Location(_TABLE, row_key(row_id), "bot_token")
            refresh_at = Location(_TABLE, row_key(row_id), "bot_refresh_token")
            refresh = (
                self._cipher.encrypt_str(bot.bot_refresh_token, refresh_at)
                if bot.bot_refresh_token
                else None
            )
            await conn.execute(
                """
                UPDATE slack_bots SET
                    is_enterprise_install = $2, app_id = $3, enterprise_name = $4,
                    team_name = $5, bot_id = $6, bot_user_id = $7, bot_scopes = $8,
                    bot_token = $9, bot_token_kid = $10,
                    bot_refresh_token = $11, bot_refresh_token_kid = $12,
                    bot_token_expires_at = $13, installed_at = $14, updated_at = now()
                WHERE id = $1
                """,
                row_id,
                bot.is_enterprise_install,
                bot.app_id,
                bot.enterprise_name,
                bot.team_name,
                bot.bot_id,
                bot.bot_user_id,
                list(bot.bot_scopes),
                self._cipher.encrypt_str(bot.bot_token, token_at),
                self._cipher.primary_kid,
                refresh,
                self._cipher.primary_kid if refresh is not None else None,
                bot.bot_token_expires_at,
                bot.installed_at,
            )
            if installer_user_id is not None:
                await conn.execute(
                    """
                    INSERT INTO slack_installations (client_id, enterprise_id, team_id,
                        is_enterprise_install, installer_user_id, app_id, bot_id, bot_scopes,
                        installed_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    """,
                    self._client_id,
                    enterprise_id,
                    team_id,
                    bot.is_enterprise_install,
                    installer_user_id,
                    bot.app_id,
                    bot.bot_id,
                    list(bot.bot_scopes),
                    bot.installed_at,
                )
        return row_id

    async def find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool = False
    ) -> SlackBot | None:
        """The bot for a workspace (or org-wide install), decrypted; None if not installed."""
        ent, team = _key(enterprise_id, team_id, is_enterprise_install)
        row = await self._pool.fetchrow(
            """
            SELECT * FROM slack_bots
             WHERE client_id = $1 AND enterprise_id = $2 AND team_id IN ($3, '')
             ORDER BY team_id DESC
             LIMIT 1
            """,
            self._client_id,
            ent,
            team,
        )
        if row is None or row["bot_token"] is None:
            return None
        rid = row_key(row["id"])
        refresh = row["bot_refresh_token"]
        return SlackBot(
            enterprise_id=row["enterprise_id"] or None,
            team_id=row["team_id"] or None,
            bot_id=row["bot_id"],
            bot_user_id=row["bot_user_id"],
            bot_token=self._cipher.decrypt_str(
                bytes(row["bot_token"]), Location(_TABLE, rid, "bot_token")
            ),
            is_enterprise_install=row["is_enterprise_install"],
            app_id=row["app_id"],
            enterprise_name=row["enterprise_name"],
            team_name=row["team_name"],
            bot_scopes=tuple(row["bot_scopes"]),
            bot_refresh_token=(
                self._cipher.decrypt_str(bytes(refresh), Location(_TABLE, rid, "bot_refresh_token"))
                if refresh is not None
                else None
            ),
            bot_token_expires_at=row["bot_token_expires_at"],
            installed_at=row["installed_at"],
        )

    async def latest_installer(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool = False
    ) -> str | None:
        """Who installed the app in this workspace most recently (for slack_sdk's Installation)."""
        ent, team = _key(enterprise_id, team_id, is_enterprise_install)
        user: str | None = await self._pool.fetchval(
            """
            SELECT installer_user_id FROM slack_installations
             WHERE client_id = $1 AND enterprise_id = $2 AND team_id = $3
             ORDER BY installed_at DESC, id DESC LIMIT 1
            """,
            self._client_id,
            ent,
            team,
        )
        return user

    async def delete_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool = False
    ) -> bool:
        """Forget a workspace's bot (uninstall, tokens revoked); True if one was stored."""
        ent, team = _key(enterprise_id, team_id, is_enterprise_install)
        deleted = await self._pool.fetchval(
            "DELETE FROM slack_bots WHERE client_id = $1 AND enterprise_id = $2 AND team_id = $3"
            " RETURNING id",
            self._client_id,
            ent,
            team,
        )
        return deleted is not None

    # --- OAuth states -----------------------------------------------------------------

    async def issue_state(self, *, ttl: timedelta = timedelta(minutes=10)) -> str:
        """A fresh random state for /slack/install; only its hash is stored."""
        state = secrets.token_urlsafe(32)
        async with self._pool.acquire() as conn, conn.transaction():
            # Expired states are garbage; clearing them here keeps the table small.
            await conn.execute("DELETE FROM slack_oauth_states WHERE expires_at < now()")
            await conn.execute(
                "INSERT INTO slack_oauth_states (state_hash, expires_at) VALUES ($1, $2)",
                _hash(state),
                datetime.now(UTC) + ttl,
            )
        return state

    async def consume_state(self, state: str) -> bool:
        """True once for a state issued here and not expired; False ever after."""
        valid: bool | None = await self._pool.fetchval(
            "DELETE FROM slack_oauth_states WHERE state_hash = $1 RETURNING expires_at > now()",
            _hash(state),
        )
        return bool(valid)


def _hash(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()
