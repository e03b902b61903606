"""Shared fixtures for tests that need the fake Google and a wired YouTube platform.

Import the fixtures into a conftest (`from tests.fakes.google_env import *`).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from agent.actions import EXECUTORS
from agent.context import AgentConfig, Deps
from integrations.http import Guards, RetryPolicy, make_client
from integrations.youtube import ResumableUploader, YouTubeConfig, YouTubePlatform
from integrations.youtube.plugin import PLUGIN as YOUTUBE
from integrations.youtube.plugin import YouTubeSettings, capabilities
from storage import accounts
from storage.accounts import LinkedAccount
from storage.crypto import TokenCipher, generate_key_spec, parse_keys
from storage.identity import Identity, resolve
from tests.fakes.google import Channel, FakeGoogle, youtube_config, youtube_settings
from tests.fakes.platforms import build, directory
from tests.fakes.server import serve_asgi

__all__ = [
    "cipher",
    "cipher_spec",
    "deps",
    "google",
    "guards",
    "http",
    "identity",
    "link_account",
    "make_identity",
    "youtube",
]


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogle]:
    fake = FakeGoogle()
    async with serve_asgi(fake) as base:
        fake.base = base
        yield fake


# The production retry policy, with backoff short enough for tests.
TEST_RETRY = RetryPolicy(base_delay=0.001, max_delay=0.01)


@pytest.fixture
def guards() -> Guards:
    return Guards(retry=TEST_RETRY)


@pytest.fixture
async def http(guards: Guards) -> AsyncIterator[httpx.AsyncClient]:
    """YouTube's client as production builds it: retries, breaker and cap included."""
    async with make_client(platform="youtube", guards=guards, timeout=10) as client:
        yield client


def make_youtube(config: YouTubeConfig, http: httpx.AsyncClient) -> YouTubePlatform:
    """A YouTubePlatform whose uploader backs off as briefly as the test client does."""
    uploader = ResumableUploader(
        http=http,
        upload_base=config.upload_base,
        chunk_bytes=config.chunk_bytes,
        retry=TEST_RETRY,
    )
    caps = capabilities(YouTubeSettings())
    return YouTubePlatform(config=config, http=http, capabilities=caps, uploader=uploader)


@pytest.fixture
def youtube(google: FakeGoogle, http: httpx.AsyncClient) -> YouTubePlatform:
    """Built by the plug-in, as production builds it; only the uploader's backoff is short."""
    platform: YouTubePlatform = build(YOUTUBE, http, **youtube_settings(google.base, google))
    config = youtube_config(google.base, google)
    platform.uploader = ResumableUploader(
        http=http, upload_base=config.upload_base, chunk_bytes=config.chunk_bytes, retry=TEST_RETRY
    )
    return platform


@pytest.fixture(scope="session")
def cipher_spec() -> str:
    return generate_key_spec("yt1")


@pytest.fixture(scope="session")
def cipher(cipher_spec: str) -> TokenCipher:
    return TokenCipher(parse_keys(cipher_spec))


@pytest.fixture
def deps(pool: asyncpg.Pool, redis: Any, cipher: TokenCipher, youtube: YouTubePlatform) -> Deps:
    return Deps(
        pool=pool,
        redis=redis,
        cipher=cipher,
        config=AgentConfig(public_base_url="http://testserver"),
        platforms=directory(youtube),
        executors=EXECUTORS,
    )


@pytest.fixture
def make_identity(pool: asyncpg.Pool) -> Any:
    async def build(workspace: str | None = None, user: str | None = None) -> Identity:
        return await resolve(
            pool,
            frontend="local",
            workspace_external_id=workspace or "W" + secrets.token_hex(4),
            user_external_id=user or "U" + secrets.token_hex(4),
            user_display_name="Ada",
        )

    return build


@pytest.fixture
async def identity(make_identity: Any) -> Identity:
    return await make_identity()


async def link_channel(
    pool: asyncpg.Pool,
    cipher: TokenCipher,
    google: FakeGoogle,
    who: Identity,
    channel: Channel | None = None,
    *,
    expires_in: int = 3600,
) -> tuple[LinkedAccount, Channel, dict[str, Any]]:
    """Link a fake channel to an identity directly (as the OAuth callback would)."""
    channel = channel or google.add_channel("Linked " + secrets.token_hex(2))
    raw = google.issue_tokens(channel.id, expires_in=expires_in)
    expires_at = datetime.now(tz=UTC) + timedelta(seconds=expires_in)
    token = {
        "access_token": raw["access_token"],
        "refresh_token": raw["refresh_token"],
        "expires_at": expires_at.isoformat(),
        "scopes": [],
        "token_type": "Bearer",
        "extra": {},
    }
    async with pool.acquire() as conn:
        account = await accounts.upsert_linked(
            conn,
            cipher=cipher,
            workspace_id=who.workspace_id,
            owner_id=who.chat_user_id,
            platform="youtube",
            external_id=channel.id,
            handle=channel.custom_url,
            scopes=[],
            token=token,
            expires_at=expires_at,
        )
    return account, channel, raw


@pytest.fixture
def link_account(pool: asyncpg.Pool, cipher: TokenCipher, google: FakeGoogle) -> Any:
    """`link_channel` on the test's pool and cipher."""

    async def build(
        who: Identity, channel: Channel | None = None, *, expires_in: int = 3600
    ) -> tuple[LinkedAccount, Channel, dict[str, Any]]:
        return await link_channel(pool, cipher, google, who, channel, expires_in=expires_in)

    return build
