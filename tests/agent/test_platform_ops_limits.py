"""PlatformOps with the real limiter and a hanging platform: budgets bind, slow platforms don't."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from agent.context import AgentConfig, Deps
from agent.platform_ops import PlatformOps
from integrations.base import (
    AccountMetrics,
    AccountProfile,
    CaptionRules,
    Figure,
    Metric,
    PostMetrics,
    PostSummary,
    TokenSet,
)
from integrations.errors import QuotaExceeded
from storage import accounts
from storage.identity import Identity, resolve
from storage.ratelimit import Budgets, Decision, LimitPolicy

POLICY = LimitPolicy(
    user_messages="20/minute",
    workspace_messages="300/minute",
    platform_calls="1000/second",
    user_llm_tokens_per_day=1000,
    workspace_llm_tokens_per_day=10_000,
)


@dataclass(frozen=True, slots=True)
class PublishWindow:
    """Shaped like integrations' QuotaCounter: 2 publishes per account per rolling 24 h."""

    name: str = "publishes"
    label: str = "publishes"
    limit: int = 2
    per_account: bool = True
    rolling_seconds: int | None = 86_400
    reset_zone: str = "UTC"


class ShimBudgets(Budgets):
    """The real limiter behind the method name PlatformOps still probes for (test-only shim,
    until PlatformOps calls `reserve` with the platform's declared costs)."""

    async def reserve_instagram_publish(self, *, account_id: int) -> Decision:
        return await self.reserve("instagram", account_id, {"publishes": 1})


class ReadOnlyPlatform:
    """A SocialPlatform that only answers reads; every other call fails the test loudly."""

    display_name = "Fake"
    caption_rules = CaptionRules()
    scopes = ("read",)
    page_size = 50

    def __init__(self, name: str, *, hang: bool = False) -> None:
        self.name = name  # type: ignore[assignment]
        self.hang = hang

    def quota_cost(self, operation: str) -> int:
        return 0

    async def recent_posts(
        self, token: TokenSet, account: AccountProfile, *, limit: int = 50
    ) -> list[PostSummary]:
        if self.hang:
            await asyncio.sleep(3600)
        return [PostSummary(post_id="p1", title="One", published_at=None)]

    async def post_metrics(self, token: TokenSet, post_ids: Any) -> list[PostMetrics]:
        now = datetime.now(tz=UTC)
        return [
            PostMetrics(self.name, pid, now, {Metric.VIEWS: Figure(42, "plays")})  # type: ignore[arg-type]
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
            datetime.now(tz=UTC),  # type: ignore[arg-type]
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


async def test_instagram_publish_window_refuses_the_third_publish_with_the_numbers(
    pool, redis, cipher, who
):
    budgets = ShimBudgets(redis=redis, policy=POLICY, quotas={"instagram": [PublishWindow()]})
    deps = Deps(pool=pool, redis=redis, cipher=cipher, config=AgentConfig(), budgets=budgets)
    ops = PlatformOps(deps=deps)
    account = await _linked(pool, cipher, who, "instagram")
    for _ in range(2):
        assert await ops._charge("instagram", units=1, uploads=1, account_id=account.id) is False
    with pytest.raises(QuotaExceeded) as refused:
        await ops._charge("instagram", units=1, uploads=1, account_id=account.id)
    assert "2 publishes" in refused.value.user_message
    assert refused.value.retry_after and refused.value.retry_after > 0
    # Another account of the same workspace has its own window.
    other = await _linked(pool, cipher, who, "instagram")
    assert await ops._charge("instagram", units=1, uploads=1, account_id=other.id) is False


async def test_metrics_return_the_healthy_platform_when_another_hangs(pool, redis, cipher, who):
    deps = Deps(
        pool=pool,
        redis=redis,
        cipher=cipher,
        config=replace(AgentConfig(), call_deadline_seconds=0.5),
        platforms={
            "youtube": ReadOnlyPlatform("youtube", hang=True),  # type: ignore[dict-item]
            "instagram": ReadOnlyPlatform("instagram"),
        },  # type: ignore[dict-item]
    )
    await _linked(pool, cipher, who, "youtube")
    ig = await _linked(pool, cipher, who, "instagram")
    report = await asyncio.wait_for(PlatformOps(deps=deps).metrics(who, days=7), timeout=10)
    assert [ref for ref, _ in report.accounts] == [ig.ref]
    assert report.accounts[0][1].value(Metric.VIEWS) == 420
    assert "did not answer in time" in report.unavailable["youtube"]
