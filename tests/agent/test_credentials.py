"""Fresh tokens: one refresh for many concurrent callers; invalid_grant -> needs_relink."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from agent.credentials import Credentials
from integrations.errors import NeedsRelink
from storage import accounts
from tests.fakes.platforms import directory


async def test_valid_token_needs_no_refresh(pool, cipher, youtube, google, identity, link_account):
    account, _, raw = await link_account(identity)
    creds = Credentials(pool=pool, cipher=cipher, platforms=directory(youtube))
    token = await creds.fresh_token(account)
    assert token.access_token == raw["access_token"]
    assert google.refresh_count == 0


async def test_fifty_callers_on_three_pools_cause_one_refresh(
    pg_dsn, cipher, youtube, google, identity, link_account
):
    account, _, raw = await link_account(identity, expires_in=30)  # inside the 5 min margin
    google.refresh_delay = 0.3  # widen the race window
    pools = [await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4) for _ in range(3)]
    try:
        replicas = [Credentials(pool=p, cipher=cipher, platforms=directory(youtube)) for p in pools]
        tokens = await asyncio.gather(*(replicas[i % 3].fresh_token(account) for i in range(50)))
    finally:
        for p in pools:
            await p.close()
    assert google.refresh_count == 1
    assert len({t.access_token for t in tokens}) == 1
    assert tokens[0].access_token != raw["access_token"]
    assert tokens[0].refresh_token == raw["refresh_token"]


async def test_rotated_refresh_token_is_stored(
    pool, cipher, youtube, google, identity, link_account
):
    account, _, raw = await link_account(identity, expires_in=10)
    google.rotate_refresh_tokens = True
    creds = Credentials(pool=pool, cipher=cipher, platforms=directory(youtube))
    first = await creds.fresh_token(account)
    assert first.refresh_token != raw["refresh_token"]
    stored = await accounts.load_token(pool, cipher=cipher, account=account)
    assert stored["refresh_token"] == first.refresh_token
    # The old refresh token is dead at Google; the stored one still works.
    google.expire_access_tokens()
    second = await creds.fresh_token(account, stale=first)
    assert second.access_token != first.access_token
    assert google.refresh_count == 2


async def test_invalid_grant_marks_needs_relink(
    pool, cipher, youtube, google, identity, link_account
):
    account, _, raw = await link_account(identity, expires_in=10)
    google.refresh_tokens.pop(raw["refresh_token"])  # the user revoked us at Google
    creds = Credentials(pool=pool, cipher=cipher, platforms=directory(youtube))
    with pytest.raises(NeedsRelink) as info:
        await creds.fresh_token(account)
    assert "link youtube" in str(info.value)
    assert raw["refresh_token"] not in str(info.value)
    reloaded = await accounts.get_by_id(pool, account.id)
    assert reloaded.status == "needs_relink"
    # Later calls fail fast without asking Google again.
    with pytest.raises(NeedsRelink):
        await creds.fresh_token(reloaded)
    assert google.refresh_count == 1
