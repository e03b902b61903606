"""PlatformOps with the real limiter and a hanging platform: budgets bind, slow platforms don't."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from agent.context import AgentConfig
from agent.limits import NoLimits
from agent.ops import PlatformOps
from integrations.base import (
    AccountMetrics,
    AccountProfile,
    Figure,
    Metric,
    PostMetrics,
    PostSummary,
    TokenSet,
)
from integrations.capabilities import (
    CaptionRules,
    MetricsLimits,
    PlatformCapabilities,
    Privacy,
    QuotaCounter,
    QuotaSpec,
)
from integrations.errors import QuotaExceeded
from integrations.registry import Platforms
from storage import accounts
from storage.identity import Identity, resolve
from tests.chat_fixtures import real_budgets


def capabilities(name: str, *, publishes_per_day: int = 100) -> PlatformCapabilities:
    return PlatformCapabilities(
        name=name,
        display_name=name.title(),
        account_prefix=name[:2],
        privacy=Privacy(values=("public",), default="public"),
        media="push",
        metrics=MetricsLimits(max_ids_per_call=50, max_period_days=365),
        caption_rules=CaptionRules(),
        quota=QuotaSpec(
            counters=(
                QuotaCounter(
                    "publishes",
                    "publishes",
                    publishes_per_day,
                    per_account=True,
                    rolling_seconds=86400,
                ),
            ),
            costs={"upload": {"publishes": 1}},
        ),
    )


class ReadOnlyPlatform:
    """A SocialPlatform that only answers reads; every other call fails the test loudly."""

    scopes = ("read",)

    def __init__(self, name: str, *, hang: bool = False) -> None:
        self.name = name
        self.capabilities = capabilities(name)
        self.hang = hang

    async def recent_posts(
        self, token: TokenSet, account: AccountProfile, *, limit: int = 50
    ) -> list[PostSummary]:
        if self.hang:
            await asyncio.sleep(3600)
        return [PostSummary(post_id="p1", title="One", published_at=None)]

    async def post_metrics(self, token: TokenSet, post_ids: Any) -> list[PostMetrics]:
        now = datetime.now(tz=UTC)
        return [
            PostMetrics(self.name, pid, now, {Metric.VIEWS: Figure(42, "plays")})
            for pid in post_ids
        ]

    async def account_metrics(
        self, token: TokenSet, account: AccountProfile, *, start: date, end: date
    ) -> AccountMetrics:
        return AccountMetrics(
            self.name,
            account.external_id,
            start,
            end,
            datetime.now(tz=UTC),
            {Metric.VIEWS: Figure(420, "plays")},
        )

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected platform call: {name}")


async def _linked(pool, cipher, who: Identity, platform: str) -> accounts.LinkedAccount:
    async with pool.acquire() as conn:
        return await accounts.upsert_linked(
            conn,
            cipher=cipher,
            workspace_id=who.workspace_id,
            owner_id=who.chat_user_id,
            platform=platform,
            external_id=f"{platform}-{secrets.token_hex(3)}",
            handle=platform,
            scopes=[],
            token={"access_token": "t", "expires_at": None},
            expires_at=None,
        )


@pytest.fixture
async def who(pool) -> Identity:
    return await resolve(
        pool,
        frontend="local",
        workspace_external_id=f"W{secrets.token_hex(3)}",
        user_external_id="ada",
    )


async def test_rolling_publish_window_refuses_the_third_publish_with_the_numbers(
    pool, redis, cipher, who
):
    caps = capabilities("alpha", publishes_per_day=2)
    platforms = Platforms([caps])
    ops = PlatformOps(
        pool=pool,
        cipher=cipher,
        platforms=platforms,
        budgets=real_budgets(redis, platforms),
        config=AgentConfig(),
    )
    account = await _linked(pool, cipher, who, "alpha")
    for _ in range(2):
        amounts, _ = await ops._charge(account, "upload")
        assert amounts == {"publishes": 1}
    with pytest.raises(QuotaExceeded) as refused:
        await ops._charge(account, "upload")
    assert "used its 2 Alpha publishes of the last 24 h" in refused.value.user_message
    assert refused.value.retry_after and refused.value.retry_after > 0
    # Another account of the same workspace has its own window.
    other = await _linked(pool, cipher, who, "alpha")
    assert (await ops._charge(other, "upload"))[0] == {"publishes": 1}


async def test_metrics_return_the_healthy_platform_when_another_hangs(pool, redis, cipher, who):
    slow, healthy = ReadOnlyPlatform("alpha", hang=True), ReadOnlyPlatform("beta")
    ops = PlatformOps(
        pool=pool,
        cipher=cipher,
        platforms=Platforms(
            [slow.capabilities, healthy.capabilities],
            {
                "alpha": slow,
                "beta": healthy,  # type: ignore[dict-item]
            },
        ),
        budgets=NoLimits(),
        config=replace(AgentConfig(), call_deadline_seconds=0.5),
    )
    await _linked(pool, cipher, who, "alpha")
    beta = await _linked(pool, cipher, who, "beta")
    report = await asyncio.wait_for(ops.metrics(who, days=7), timeout=10)
    assert [ref for ref, _ in report.accounts] == [beta.ref]
    assert report.accounts[0][1].value(Metric.VIEWS) == 420
    assert "did not answer in time" in report.unavailable["alpha"]
