"""What linking, uploads and metrics share: the requester's accounts, tokens and budgets.

Platform-agnostic: everything that differs between platforms comes from their
declared `PlatformCapabilities`; budgets are charged from each platform's quota
spec before a call is made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg

from agent.context import AgentConfig
from agent.credentials import Credentials, relink_message
from agent.limits import Budgets, Decision
from integrations.base import SocialPlatform, TokenSet
from integrations.capabilities import PlatformCapabilities
from integrations.errors import (
    NeedsRelink,
    NotFound,
    QuotaExceeded,
    RateLimited,
    TokenExpired,
    format_wait,
)
from integrations.registry import Platforms
from storage import accounts
from storage.accounts import LinkedAccount
from storage.crypto import TokenCipher
from storage.identity import Identity

T = TypeVar("T")


def quota_refusal(caps: PlatformCapabilities, decision: Decision, need: Mapping[str, int]) -> str:
    """The sentence for a refused reservation, from the platform's own counter labels."""
    counter = next((c for c in caps.quota.counters if c.name == decision.counter), None)
    wait = format_wait(decision.retry_after)
    if counter is None:
        return f"{caps.display_name} budget is used up; try again in {wait}."
    if counter.rolling_seconds is not None:
        window = format_wait(counter.rolling_seconds)
        scope = "This account has" if counter.per_account else "This bot has"
        return (
            f"{scope} used its {decision.limit} {caps.display_name} {counter.label} of the "
            f"last {window}; the next one frees up in about {wait}."
        )
    reset = f"{decision.reset_at.astimezone(UTC):%H:%M} UTC" if decision.reset_at else "reset"
    return (
        f"Not enough {caps.display_name} {counter.label} left today: this needs "
        f"{need.get(counter.name, 0):,}, {decision.remaining:,} of {decision.limit:,} remain. "
        f"They reset at {reset} (in about {wait})."
    )


class OpsBase:
    """Shared state and helpers of PlatformOps' parts."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        cipher: TokenCipher,
        platforms: Platforms,
        budgets: Budgets,
        config: AgentConfig,
        credentials: Credentials | None = None,
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._platforms = platforms
        self._budgets = budgets
        self._config = config
        self.credentials = credentials or Credentials(pool=pool, cipher=cipher, platforms=platforms)

    def configured(self) -> list[str]:
        return self._platforms.configured()

    def _platform(self, name: str) -> SocialPlatform:
        return self._platforms.client(name)

    async def _account(self, identity: Identity, ref: str) -> LinkedAccount:
        account = await accounts.get_by_ref(
            self._pool, workspace_id=identity.workspace_id, ref=ref, owner_id=identity.chat_user_id
        )
        if account is None:
            raise NotFound(f"You have no linked account '{ref}'.", platform="accounts")
        return account

    def _relink_error(self, account: LinkedAccount) -> NeedsRelink:
        display = self._platforms.display(account.platform)
        return NeedsRelink(relink_message(account, display), platform=account.platform)

    async def _charge(
        self, account: LinkedAccount, operation: str, times: int = 1
    ) -> tuple[dict[str, int], Decision | None]:
        """Reserve what `times` calls of `operation` cost, before making them.

        Returns the amounts and the reservation (for a refund if nothing reached the
        platform); QuotaExceeded with the numbers if the budget can't cover it, and
        RateLimited when the limiter itself is unreachable.
        """
        caps = self._platforms.capabilities(account.platform)
        amounts = caps.quota.cost(operation, times)
        if not amounts:
            return amounts, None
        for counter in caps.quota.counters:
            if amounts.get(counter.name, 0) > counter.limit:
                raise QuotaExceeded(
                    f"This needs {amounts[counter.name]:,} {caps.display_name} "
                    f"{counter.label}, more than the whole budget of {counter.limit:,}.",
                    platform=account.platform,
                    reason="over_budget",
                )
        decision = await self._budgets.reserve(account.platform, account.id, amounts)
        if decision.allowed:
            return amounts, decision
        if decision.unavailable:
            raise RateLimited(
                "Rate limits are unavailable right now; try again shortly.",
                platform=account.platform,
                reason="limiter_unavailable",
                retry_after=decision.retry_after,
            )
        raise QuotaExceeded(
            quota_refusal(caps, decision, amounts),
            platform=account.platform,
            reason="local_quota",
            retry_after=decision.retry_after,
        )

    async def _refund(
        self, account: LinkedAccount, amounts: Mapping[str, int], reservation: Decision | None
    ) -> None:
        if amounts:
            await self._budgets.refund(account.platform, account.id, amounts, reservation)

    async def _with_token(
        self, account: LinkedAccount, call: Callable[[TokenSet], Awaitable[T]]
    ) -> T:
        """Run a platform call; on 401 refresh once and retry, then ask for a relink."""
        token = await self.credentials.fresh_token(account)
        try:
            return await call(token)
        except TokenExpired:
            fresh = await self.credentials.fresh_token(account, stale=token)
        try:
            return await call(fresh)
        except TokenExpired:
            await accounts.mark_needs_relink(self._pool, account.id)
            raise NeedsRelink(
                relink_message(account, self._platforms.display(account.platform)),
                platform=account.platform,
                status=401,
            ) from None


def now_utc() -> datetime:
    return datetime.now(tz=UTC)
