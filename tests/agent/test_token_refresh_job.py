"""The worker's proactive refresh: Instagram's long-lived tokens are renewed before they lapse."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from agent.credentials import Credentials
from integrations.base import TokenSet
from integrations.http import Guards, make_client
from integrations.instagram import InstagramPlatform
from integrations.instagram.plugin import PLUGIN as INSTAGRAM
from storage import accounts
from storage.identity import resolve
from tests.fakes.instagram import FakeInstagram, instagram_settings
from tests.fakes.platforms import build, directory
from tests.fakes.server import serve_asgi


@pytest.fixture
async def instagram() -> AsyncIterator[tuple[FakeInstagram, InstagramPlatform]]:
    fake = FakeInstagram()
    async with (
        serve_asgi(fake.app) as base,
        make_client(platform="instagram", guards=Guards(), timeout=10) as http,
    ):
        yield (
            fake,
            build(INSTAGRAM, http, **instagram_settings(base, fake)),
        )


async def test_expiring_tokens_are_renewed_others_left_alone(pool, cipher, instagram) -> None:
    fake, platform = instagram
    who = await resolve(
        pool,
        frontend="local",
        workspace_external_id=f"W{secrets.token_hex(3)}",
        user_external_id="fern",
    )
    now = datetime.now(tz=UTC)
    linked = {}
    for label, expires_in in (
        ("soon", timedelta(days=2)),
        ("later", timedelta(days=40)),
        ("dead", timedelta(days=1)),
    ):
        user = fake.add_user(f"{label}.{secrets.token_hex(2)}")
        raw = fake.issue_token(user)
        if label == "dead":
            fake.expire(raw)
        token = TokenSet(access_token=raw, expires_at=now + expires_in)
        async with pool.acquire() as conn:
            linked[label] = await accounts.upsert_linked(
                conn,
                cipher=cipher,
                workspace_id=who.workspace_id,
                owner_id=who.chat_user_id,
                platform="instagram",
                external_id=user.user_id,
                handle=label,
                scopes=[],
                token=token.to_dict(),
                expires_at=token.expires_at,
            )
    before = {
        k: (await accounts.load_token(pool, cipher=cipher, account=a))["access_token"]
        for k, a in linked.items()
    }

    credentials = Credentials(pool=pool, cipher=cipher, platforms=directory(platform))
    due = await credentials.expiring()
    assert {linked["soon"].id, linked["dead"].id} <= set(due)
    assert linked["later"].id not in due
    refreshed = sum([await credentials.refresh_account(account_id) for account_id in due])

    after = {k: await accounts.get_by_id(pool, a.id) for k, a in linked.items()}
    soon_token = await accounts.load_token(pool, cipher=cipher, account=after["soon"])  # type: ignore[arg-type]
    assert soon_token["access_token"] != before["soon"]
    assert after["soon"].expires_at > now + timedelta(days=50)  # type: ignore[union-attr]
    assert after["later"].expires_at == linked["later"].expires_at  # type: ignore[union-attr]
    assert after["dead"].status == "needs_relink"  # type: ignore[union-attr]
    assert refreshed >= 1
    refreshes = [c for c in fake.calls if c.path == "/refresh_access_token"]
    assert before["later"] not in {c.params.get("access_token") for c in refreshes}
