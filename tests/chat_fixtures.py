"""Fixtures shared by the conversation tests (imported by tests/agent and tests/bot conftests)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from agent.context import ActionContext, AgentConfig, Deps
from storage import accounts, identity
from storage.accounts import LinkedAccount
from storage.crypto import TokenCipher, generate_key_spec, parse_keys
from storage.identity import Identity
from storage.redis import RedisHandle


@pytest.fixture(scope="session")
def cipher() -> TokenCipher:
    return TokenCipher(parse_keys(generate_key_spec("conv1")))


@pytest.fixture
def make_deps(pool: asyncpg.Pool, redis: RedisHandle, cipher: TokenCipher) -> Callable[..., Deps]:
    def build(*, ops: Any = None, budgets: Any = None, **config: Any) -> Deps:
        return Deps(
            pool=pool,
            redis=redis,
            cipher=cipher,
            config=AgentConfig(**config),
            ops=ops,
            budgets=budgets,
        )

    return build


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
