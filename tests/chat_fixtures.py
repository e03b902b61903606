"""Fixtures shared by the conversation tests (imported by tests/agent and tests/bot conftests)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from agent.actions import EXECUTORS
from agent.context import ActionContext, AgentConfig, Deps
from agent.limits import NoLimits
from agent.ops import PlatformOps
from agent.ports import Progress, UploadOutcome
from integrations.registry import Platforms
from storage import accounts, identity
from storage.accounts import LinkedAccount
from storage.crypto import TokenCipher, generate_key_spec, parse_keys
from storage.identity import Identity
from storage.ratelimit import Budgets, LimitPolicy
from storage.redis import RedisHandle
from tests.fakes.chatops import FakeOps
from tests.fakes.platforms import directory


@pytest.fixture(scope="session")
def cipher() -> TokenCipher:
    return TokenCipher(parse_keys(generate_key_spec("conv1")))


@pytest.fixture
def make_deps(pool: asyncpg.Pool, redis: RedisHandle, cipher: TokenCipher) -> Callable[..., Deps]:
    def build(
        *, ops: Any = None, budgets: Any = None, platforms: Any = None, **config: Any
    ) -> Deps:
        return Deps(
            pool=pool,
            redis=redis,
            cipher=cipher,
            config=AgentConfig(**config),
            platforms=platforms
            if platforms is not None
            else directory(configured=ops.platforms if isinstance(ops, FakeOps) else ()),
            ops=ops,
            budgets=budgets if budgets is not None else NoLimits(),
            executors=EXECUTORS,
        )

    return build


def ops_for(deps: Deps, **options: Any) -> PlatformOps:
    """The production PlatformOps over a test's Deps."""
    return PlatformOps(
        pool=deps.pool,
        cipher=deps.cipher,
        platforms=deps.platforms,
        budgets=deps.budgets,
        config=deps.config,
        **options,
    )


TEST_POLICY = LimitPolicy(
    user_messages="20/minute",
    workspace_messages="300/minute",
    user_llm_tokens_per_day=1000,
    workspace_llm_tokens_per_day=10_000,
)


def real_budgets(redis: RedisHandle, platforms: Platforms, **limits: dict[str, int]) -> Budgets:
    """The production limiter on the test's Redis, with the platforms' declared quotas.

    `limits` lowers counters per platform, e.g. `youtube={"units": 1000}`.
    """
    quotas = {
        cap.name: tuple(
            replace(c, limit=limits.get(cap.name, {}).get(c.name, c.limit))
            for c in cap.quota.counters
        )
        for cap in platforms
    }
    # A long call bound: these tests are about what is charged, not about a slow Redis
    # (a busy CI machine can take longer than production's half second).
    return Budgets(redis=redis, policy=TEST_POLICY, quotas=quotas, call_timeout=5.0)


@pytest.fixture
def new_identity(pool: asyncpg.Pool) -> Callable[..., Awaitable[Identity]]:
    """A chat user in a workspace; unique external ids unless given."""

    async def make(
        *, frontend: str = "slack", workspace: str | None = None, user: str | None = None
    ) -> Identity:
        return await identity.resolve(
            pool,
            frontend=frontend,
            workspace_external_id=workspace or f"T{secrets.token_hex(4)}",
            user_external_id=user or f"U{secrets.token_hex(4)}",
        )

    return make


@pytest.fixture
def link(pool: asyncpg.Pool, cipher: TokenCipher) -> Callable[..., Awaitable[LinkedAccount]]:
    """Link an account for an identity, as a finished OAuth flow would."""

    async def make(
        ident: Identity, platform: str = "youtube", handle: str = "creator"
    ) -> LinkedAccount:
        async with pool.acquire() as conn:
            return await accounts.upsert_linked(
                conn,
                cipher=cipher,
                workspace_id=ident.workspace_id,
                owner_id=ident.chat_user_id,
                platform=platform,
                external_id=f"ext-{secrets.token_hex(4)}",
                handle=handle,
                scopes=["read"],
                token={"access_token": "secret-access-token-xyz"},
                expires_at=None,
            )

    return make


def action_ctx(ident: Identity, deps: Deps) -> ActionContext:
    return ActionContext(identity=ident, deps=deps)


async def used(budgets: Budgets, platform: str) -> dict[str, int]:
    """What a platform's per-app counters have used, from the limiter's own report."""
    rows = await budgets.report(workspace_id=0, chat_user_id=0)
    return {r.counter: r.used for r in rows if r.platform == platform and r.scope == "app"}


async def upload_now(
    ops: PlatformOps,
    identity: Identity,
    *,
    progress: Progress | None = None,
    **request: Any,
) -> UploadOutcome:
    """Prepare the post row and run the upload in this process (what its job does)."""
    post = await ops.prepare_upload(identity, **request)
    return await ops.run_upload(post.id, progress)
