"""Fresh access tokens for linked accounts, refreshed once no matter how many ask.

A refresh happens inside a transaction that holds the account row
(`SELECT ... FOR UPDATE`) and re-checks expiry after the lock is granted: of many
concurrent callers on many replicas, the first refreshes and the rest read its
result. A refused refresh (`invalid_grant`) marks the account `needs_relink`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from integrations.base import SocialPlatform, TokenSet
from integrations.errors import NeedsRelink
from integrations.registry import Platforms
from storage import accounts
from storage.accounts import LinkedAccount, TokenUnavailable
from storage.crypto import TokenCipher

log = logging.getLogger(__name__)


def relink_message(account: LinkedAccount, display: str) -> str:
    return (
        f"Your {display} account @{account.handle.lstrip('@')} needs to be linked again "
        f"(say `link {account.platform}`)."
    )


class Credentials:
    """Hands out usable tokens for accounts; never logs or returns them to chat."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        cipher: TokenCipher,
        platforms: Platforms,
        refresh_margin: timedelta = timedelta(minutes=5),
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._platforms = platforms
        self._margin = refresh_margin

    def _platform(self, account: LinkedAccount) -> SocialPlatform:
        return self._platforms.client(account.platform)

    def _needs_relink(self, account: LinkedAccount, *, reason: str) -> NeedsRelink:
        display = self._platforms.display(account.platform)
        return NeedsRelink(
            relink_message(account, display), platform=account.platform, reason=reason
        )

    def _stale(self, token: TokenSet, margin: timedelta | None = None) -> bool:
        if token.expires_at is None:
            return False
        return token.expires_at - (margin or self._margin) <= datetime.now(tz=UTC)

    async def fresh_token(
        self,
        account: LinkedAccount,
        *,
        stale: TokenSet | None = None,
        margin: timedelta | None = None,
    ) -> TokenSet:
        """A token valid for at least the refresh margin (or `margin`, when given).

        `stale`: a token the platform just refused (401); it is refreshed even if not
        yet expired, unless another caller already replaced it.
        """
        if account.status == "needs_relink":
            raise self._needs_relink(account, reason="needs_relink")
        platform = self._platform(account)
        try:
            token = TokenSet.from_dict(
                await accounts.load_token(self._pool, cipher=self._cipher, account=account)
            )
        except TokenUnavailable:
            raise self._needs_relink(account, reason="token_unavailable") from None
        if not self._stale(token, margin) and (
            stale is None or token.access_token != stale.access_token
        ):
            return token
        refused = False
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                try:
                    token = TokenSet.from_dict(
                        await accounts.load_token(
                            conn, cipher=self._cipher, account=account, for_update=True
                        )
                    )
                except TokenUnavailable:
                    raise self._needs_relink(account, reason="token_unavailable") from None
                # Re-check under the lock: someone else may have refreshed meanwhile.
                if not self._stale(token, margin) and (
                    stale is None or token.access_token != stale.access_token
                ):
                    return token
                try:
                    fresh = await platform.refresh(token)
                except NeedsRelink:
                    refused = True
                else:
                    await accounts.save_token(
                        conn,
                        cipher=self._cipher,
                        account_id=account.id,
                        token=fresh.to_dict(),
                        expires_at=fresh.expires_at,
                    )
                    log.info("refreshed an access token", extra={"account": account.ref})
                    return fresh
        # Outside the (rolled-back-on-raise) transaction, so the mark sticks.
        if refused:
            await accounts.mark_needs_relink(self._pool, account.id)
            log.warning("refresh refused; account needs relink", extra={"account": account.ref})
        raise self._needs_relink(account, reason="invalid_grant")

    async def expiring(self) -> list[int]:
        """Ids of accounts whose long-lived tokens are due for renewal.

        Only platforms that declare `refresh_ahead` take part: their tokens die if not
        renewed in time (long-lived tokens that cannot be revived once expired), while
        short-lived ones are refreshed on use instead.
        """
        due: list[int] = []
        for name in self._platforms.configured():
            ahead = self._platforms.capabilities(name).refresh_ahead
            if ahead is None:
                continue
            found = await accounts.list_expiring(
                self._pool, platform=name, before=datetime.now(tz=UTC) + ahead
            )
            due += [account.id for account in found]
        return due

    async def refresh_account(self, account_id: int) -> bool:
        """Renew one account's token ahead of expiry (a job); False if nothing was done.

        A refused refresh marks the account for relinking, as on use; other errors
        propagate, so the job is retried.
        """
        account = await accounts.get_by_id(self._pool, account_id)
        if account is None or account.platform not in self._platforms.configured():
            return False
        ahead = self._platforms.capabilities(account.platform).refresh_ahead
        if ahead is None:
            return False
        try:
            await self.fresh_token(account, margin=ahead)
        except NeedsRelink:
            return False  # marked and logged by fresh_token; the owner is told on next use
        return True
