"""Slack installations in Postgres: encrypted tokens, key rotation, single-use OAuth states."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from storage.crypto import TokenCipher, generate_key_spec, parse_keys
from storage.rotation import rotate_keys
from storage.slack_installations import SlackBot, SlackInstallations


def _cipher(*specs: str) -> TokenCipher:
    return TokenCipher([k for s in specs for k in parse_keys(s)])


async def test_bot_round_trips_and_is_replaced_per_workspace(pool: asyncpg.Pool) -> None:
    store = SlackInstallations(
        pool=pool, cipher=_cipher(generate_key_spec("k1")), client_id=secrets.token_hex(4)
    )
    await store.save_bot(
        SlackBot(
            enterprise_id=None,
            team_id="TS1",
            bot_id="B1",
            bot_user_id="U1",
            bot_token="xoxb-one",
            bot_scopes=("chat:write",),
        ),
        installer_user_id="UI",
    )
    await store.save_bot(
        SlackBot(
            enterprise_id=None,
            team_id="TS1",
            bot_id="B1",
            bot_user_id="U1",
            bot_token="xoxb-two",
            bot_refresh_token="xoxe-r",
        )
    )
    found = await store.find_bot(enterprise_id=None, team_id="TS1")
    assert found is not None
    assert (found.bot_token, found.bot_refresh_token) == ("xoxb-two", "xoxe-r")
    assert "xoxb" not in repr(found)
    assert await store.latest_installer(enterprise_id=None, team_id="TS1") == "UI"
    assert await store.find_bot(enterprise_id=None, team_id="TS2") is None
    assert await store.delete_bot(enterprise_id=None, team_id="TS1")
    assert await store.find_bot(enterprise_id=None, team_id="TS1") is None


async def test_org_wide_install_serves_its_workspaces(pool: asyncpg.Pool) -> None:
    store = SlackInstallations(
        pool=pool, cipher=_cipher(generate_key_spec("k1")), client_id=secrets.token_hex(4)
    )
    await store.save_bot(
        SlackBot(
            enterprise_id="E1",
            team_id=None,
            bot_id="B",
            bot_user_id="U",
            bot_token="xoxb-org",
            is_enterprise_install=True,
        )
    )
    found = await store.find_bot(enterprise_id="E1", team_id="TW", is_enterprise_install=False)
    assert found is not None and found.bot_token == "xoxb-org"


async def test_key_rotation_re_encrypts_slack_tokens(fresh_pool: asyncpg.Pool) -> None:
    old_spec, new_spec = generate_key_spec("old"), generate_key_spec("new")
    store = SlackInstallations(pool=fresh_pool, cipher=_cipher(old_spec), client_id="c")
    await store.save_bot(
        SlackBot(
            enterprise_id=None,
            team_id="TR",
            bot_id="B",
            bot_user_id="U",
            bot_token="xoxb-rot",
            bot_refresh_token="xoxe-rot",
        )
    )
    rotated = _cipher(new_spec, old_spec)
    report = await rotate_keys(fresh_pool, rotated)
    assert report.rotated["slack_bots.bot_token"] == 1
    assert report.rotated["slack_bots.bot_refresh_token"] == 1
    kids = await fresh_pool.fetchrow("SELECT bot_token_kid, bot_refresh_token_kid FROM slack_bots")
    assert tuple(kids) == ("new", "new")
    only_new = SlackInstallations(pool=fresh_pool, cipher=_cipher(new_spec), client_id="c")
    found = await only_new.find_bot(enterprise_id=None, team_id="TR")
    assert found is not None and (found.bot_token, found.bot_refresh_token) == (
        "xoxb-rot",
        "xoxe-rot",
    )


async def test_oauth_state_is_single_use_and_expires(pool: asyncpg.Pool) -> None:
    from datetime import timedelta

    store = SlackInstallations(pool=pool, cipher=_cipher(generate_key_spec("k1")), client_id="c")
    state = await store.issue_state()
    assert await store.consume_state(state)
    assert not await store.consume_state(state)
    assert not await store.consume_state("never-issued")
    expired = await store.issue_state(ttl=timedelta(seconds=-1))
    assert not await store.consume_state(expired)
    # Only hashes are stored: a live state's plain value is nowhere in the table.
    live = await store.issue_state()
    rows = await pool.fetch("SELECT state_hash FROM slack_oauth_states")
    assert hashlib.sha256(live.encode()).digest() in {bytes(r["state_hash"]) for r in rows}
    assert live.encode() not in {bytes(r["state_hash"]) for r in rows}
