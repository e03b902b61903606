"""Metrics: every account of the requester read concurrently, batched, charged, recorded."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from agent.ops.base import OpsBase, now_utc
from agent.ports import MetricsReport
from integrations.base import (
    AccountMetrics,
    AccountProfile,
    Figure,
    Metric,
    PostMetrics,
    SocialPlatform,
)
from integrations.errors import IntegrationError, InvalidRequest
from storage import accounts, metrics
from storage.accounts import LinkedAccount
from storage.identity import Identity

# The key of a post snapshot's publishing time (an ISO 8601 string, not a figure).
PUBLISHED_AT = "published_at"


def figures_to_json(figures: Mapping[Metric, Figure]) -> dict[str, Any]:
    return {str(m): {"value": f.value, "source": f.source} for m, f in figures.items()}


def post_snapshot_json(pm: PostMetrics) -> dict[str, Any]:
    """A post's snapshot: its figures, and when it was published (best-time reads it)."""
    data = figures_to_json(pm.figures)
    if pm.published_at is not None:
        data[PUBLISHED_AT] = pm.published_at.isoformat()
    return data


class Metrics(OpsBase):
    """Normalized figures for the requester's accounts (PlatformOps' metrics part)."""

    recent_posts_limit: int = 10

    async def metrics(
        self,
        identity: Identity,
        *,
        platform: str | None = None,
        account_ref: str | None = None,
        days: int = 7,
        post_id: str | None = None,
        shorten: bool = False,
    ) -> MetricsReport:
        """`shorten`: a platform that reaches back less than `days` reports its longest
        period instead of being left out (the person asked for no particular period)."""
        if not 1 <= days <= 365:
            raise InvalidRequest("Pick a period between 1 and 365 days.", platform="metrics")
        if account_ref:
            chosen = [await self._account(identity, account_ref)]
        else:
            chosen = await accounts.list_for_owner(
                self._pool,
                workspace_id=identity.workspace_id,
                owner_id=identity.chat_user_id,
                platform=platform,
            )
        # Analytics figures settle after a day or two; the period ends yesterday (UTC).
        end = now_utc().date() - timedelta(days=1)
        account_rows: list[tuple[str, AccountMetrics]] = []
        post_rows: list[tuple[str, PostMetrics]] = []
        unavailable: dict[str, str] = {}
        deadline = self._config.call_deadline_seconds

        async def one(account: LinkedAccount) -> None:
            impl = self._platforms.get(account.platform)
            if impl is None:
                unavailable[account.platform] = "not set up on this server"
                return
            caps = impl.capabilities
            if account.status == "needs_relink":
                unavailable[account.platform] = self._relink_error(account).user_message
                return
            span = days
            if post_id is None and days > caps.metrics.max_period_days:
                if not shorten:
                    unavailable[account.platform] = (
                        f"{caps.display_name} gives figures for at most "
                        f"{caps.metrics.max_period_days} day(s) at a time"
                    )
                    return
                span = caps.metrics.max_period_days
            start = end - timedelta(days=span - 1)
            try:
                # Accounts are read concurrently, each under the deadline, so one slow
                # platform costs at most the deadline and never hides the others' figures.
                acct, post_metrics = await asyncio.wait_for(
                    self._account_metrics(account, impl, start=start, end=end, post_id=post_id),
                    timeout=deadline,
                )
            except IntegrationError as exc:
                unavailable[account.platform] = exc.user_message
                return
            except TimeoutError:
                unavailable[account.platform] = f"{caps.display_name} did not answer in time"
                return
            account_rows.append((account.ref, acct))
            post_rows.extend((account.ref, m) for m in post_metrics)

        await asyncio.gather(*(one(account) for account in chosen))
        order = {account.ref: i for i, account in enumerate(chosen)}
        account_rows.sort(key=lambda row: order[row[0]])
        post_rows.sort(key=lambda row: order[row[0]])
        return MetricsReport(
            as_of=now_utc(), accounts=account_rows, posts=post_rows, unavailable=unavailable
        )

    async def _account_metrics(
        self,
        account: LinkedAccount,
        platform: SocialPlatform,
        *,
        start: date,
        end: date,
        post_id: str | None,
    ) -> tuple[AccountMetrics, list[PostMetrics]]:
        limits = platform.capabilities.metrics
        profile = AccountProfile(
            external_id=account.external_id, handle=account.handle, display_name=account.handle
        )
        if post_id:
            ids = [post_id]
        else:
            limit = self.recent_posts_limit
            await self._charge(account, "recent_posts", math.ceil(limit / limits.recent_page_size))
            recent = await self._with_token(
                account, lambda t: platform.recent_posts(t, profile, limit=limit)
            )
            ids = [p.post_id for p in recent]
        post_metrics: list[PostMetrics] = []
        if ids:
            await self._charge(
                account, "post_metrics", math.ceil(len(ids) / limits.max_ids_per_call)
            )
            post_metrics = await self._with_token(account, lambda t: platform.post_metrics(t, ids))
        await self._charge(account, "account_metrics")
        acct = await self._with_token(
            account, lambda t: platform.account_metrics(t, profile, start=start, end=end)
        )
        for pm in post_metrics:
            await metrics.record(
                self._pool,
                account_id=account.id,
                platform_post_id=pm.post_id,
                captured_at=pm.as_of,
                metrics=post_snapshot_json(pm),
            )
        await metrics.record(
            self._pool,
            account_id=account.id,
            period=f"{start.isoformat()}..{end.isoformat()}",
            captured_at=acct.as_of,
            metrics={
                "totals": figures_to_json(acct.figures),
                "series": [
                    {"day": d.isoformat(), "figures": figures_to_json(f)} for d, f in acct.series
                ],
            },
        )
        days = {d: figures_to_json(f) for d, f in acct.series}
        if acct.start == acct.end:  # a one-day read's totals are that day's figures
            days[acct.end] = {**days.get(acct.end, {}), **figures_to_json(acct.figures)}
        await metrics.record_days(
            self._pool, account_id=account.id, days=sorted(days.items()), captured_at=acct.as_of
        )
        return acct, post_metrics
