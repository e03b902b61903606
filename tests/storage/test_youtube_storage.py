"""oauth_states / posts / metric_snapshots: hashing, single use, encryption and rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import accounts, metrics, oauth_states, posts
from storage.crypto import TokenCipher, generate_key_spec, parse_keys
from storage.identity import resolve
from storage.rotation import rotate_keys


async def _owner(pool):
    who = await resolve(pool, frontend="local", workspace_external_id="W1", user_external_id="U1")
    async with pool.acquire() as conn:
        account = await accounts.upsert_linked(
            conn,
            cipher=CIPHER,
            workspace_id=who.workspace_id,
            owner_id=who.chat_user_id,
            platform="youtube",
            external_id="UC1",
            handle="@one",
            scopes=[],
            token={"access_token": "a"},
            expires_at=None,
        )
    return who, account


OLD = parse_keys(generate_key_spec("old"))
CIPHER = TokenCipher(OLD)


async def test_state_consumed_once_and_rotates(fresh_pool):
    pool = fresh_pool
    who, account = await _owner(pool)
    await oauth_states.create(
        pool,
        cipher=CIPHER,
        state="s3cret",
        platform="youtube",
        workspace_id=who.workspace_id,
        chat_user_id=who.chat_user_id,
        code_verifier="v" * 50,
        reply_to={"c": 1},
        ttl=timedelta(minutes=10),
    )
    post, created = await posts.create_or_get(
        pool,
        account_id=account.id,
        platform="youtube",
        idempotency_key="k1",
        title="t",
        caption=None,
        source={"kind": "file", "path": "/x"},
        metadata={},
        bytes_total=10,
    )
    assert created
    again, created_again = await posts.create_or_get(
        pool,
        account_id=account.id,
        platform="youtube",
        idempotency_key="k1",
        title="other",
        caption=None,
        source={},
        metadata={},
        bytes_total=10,
    )
    assert not created_again and again.id == post.id and again.title == "t"
    await posts.save_checkpoint(
        pool, cipher=CIPHER, post_id=post.id, session_uri="https://up/session?id=1", confirmed=5
    )

    # Rotate everything to a new key, then read with the new key alone.
    new_keys = parse_keys(generate_key_spec("new"))
    report = await rotate_keys(pool, TokenCipher(new_keys + OLD))
    assert report.rotated["oauth_states.code_verifier"] == 1
    assert report.rotated["posts.upload_session"] == 1
    only_new = TokenCipher(new_keys)
    assert await posts.load_checkpoint(pool, cipher=only_new, post_id=post.id) == (
        "https://up/session?id=1",
        5,
    )
    assert (await posts.get(pool, post.id)).status == "uploading"
    consumed = await oauth_states.consume(pool, state="s3cret", platform="youtube")
    assert consumed is not None and consumed.verifier(only_new) == "v" * 50
    assert consumed.frontend == "local" and consumed.user_external_id == "U1"
    assert await oauth_states.consume(pool, state="s3cret", platform="youtube") is None

    await posts.mark_published(
        pool, post_id=post.id, platform_post_id="vid1", metadata={"url": "u"}
    )
    done = await posts.get(pool, post.id)
    assert done.status == "published" and not done.has_session and done.bytes_confirmed == 10
    assert await posts.list_unfinished(pool) == []


async def test_snapshots_link_to_our_post(fresh_pool):
    pool = fresh_pool
    _, account = await _owner(pool)
    post, _ = await posts.create_or_get(
        pool,
        account_id=account.id,
        platform="youtube",
        idempotency_key="k2",
        title="t",
        caption=None,
        source={},
        metadata={},
        bytes_total=1,
    )
    await posts.mark_published(pool, post_id=post.id, platform_post_id="vidX", metadata={})
    now = datetime.now(tz=UTC)
    for platform_post_id in ("vidX", "not-ours", None):
        await metrics.record(
            pool,
            account_id=account.id,
            platform_post_id=platform_post_id,
            captured_at=now,
            metrics={"views": {"value": 25, "source": "statistics.viewCount"}},
        )
    linked = await pool.fetch(
        "SELECT platform_post_id, post_id FROM metric_snapshots WHERE account_id = $1 ORDER BY id",
        account.id,
    )
    assert [(r["platform_post_id"], r["post_id"]) for r in linked] == [
        ("vidX", post.id),
        ("not-ours", None),
        (None, None),
    ]
