"""The product wired as `socialops run` wires it, on a database of the test's own.

The worker part is the real one (the engine, its handlers and its schedules), so a
test's database must hold nothing but its own work: `empty_db` gives one.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.assembly import Assembly
from bot.core.messages import IncomingMessage
from bot.services import Services
from storage import accounts, identity
from storage.accounts import LinkedAccount
from storage.identity import Identity
from tests.fakes.google import FakeGoogle


def google_settings(google: FakeGoogle) -> dict[str, Any]:
    """Settings that point YouTube at the fake Google."""
    base = google.base
    return {
        "google_client_id": google.client_id,
        "google_client_secret": google.client_secret,
        "google_auth_url": f"{base}/o/oauth2/v2/auth",
        "google_token_url": f"{base}/token",
        "google_revoke_url": f"{base}/revoke",
        "youtube_api_base": f"{base}/youtube/v3",
        "youtube_upload_base": f"{base}/upload",
        "youtube_analytics_base": f"{base}/v2",
        "youtube_upload_chunk_bytes": 256 * 1024,
        "public_base_url": "http://testserver",
    }


@asynccontextmanager
async def wired(
    make_settings: Any, database_url: str, *, redis_scope: str | None = None, **overrides: Any
) -> AsyncIterator[Assembly]:
    """Services + Assembly on `database_url` (migrated on start), shut down after.

    Its Redis keys live under a prefix of their own (`redis_scope`, or a fresh one): a
    database of its own numbers workspaces and users from 1 again, and their limits
    must not meet other tests' on the shared Redis. Replicas of one deployment pass
    the same scope.
    """
    session_prefix = make_settings().redis_key_prefix
    scope = redis_scope or secrets.token_hex(4)
    settings = make_settings(
        database_url=database_url, redis_key_prefix=f"{session_prefix}{scope}:", **overrides
    )
    services = Services(settings=settings)
    await services.initialize()
    try:
        yield Assembly(services)
    finally:
        await services.shutdown()


def chat_message(workspace: str, user: str, text: str) -> IncomingMessage:
    return IncomingMessage(
        frontend="local",
        workspace_id=workspace,
        channel_id="shell",
        user_id=user,
        text=text,
        is_dm=True,
    )


async def link_youtube(
    assembly: Assembly, google: FakeGoogle, workspace: str, user: str, *, frontend: str = "local"
) -> tuple[Identity, LinkedAccount]:
    """A chat user with a fake channel linked, as a finished OAuth flow leaves them."""
    pool = assembly.services.db.pool
    who = await identity.resolve(
        pool, frontend=frontend, workspace_external_id=workspace, user_external_id=user
    )
    channel = google.add_channel("Linked " + secrets.token_hex(2))
    raw = google.issue_tokens(channel.id)
    expires_at = datetime.now(tz=UTC) + timedelta(hours=1)
    async with pool.acquire() as conn:
        account = await accounts.upsert_linked(
            conn,
            cipher=assembly.services.cipher,
            workspace_id=who.workspace_id,
            owner_id=who.chat_user_id,
            platform="youtube",
            external_id=channel.id,
            handle=channel.custom_url,
            scopes=[],
            token={
                "access_token": raw["access_token"],
                "refresh_token": raw["refresh_token"],
                "expires_at": expires_at.isoformat(),
                "scopes": [],
                "token_type": "Bearer",
                "extra": {},
            },
            expires_at=expires_at,
        )
    return who, account


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0) -> None:
    """Poll `check` until it holds; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        await asyncio.sleep(0.05)
