"""PlatformOps uploads: durable post rows, idempotency, quota, 401 handling, kill-and-resume."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.limits import NoLimits
from agent.ops import PlatformOps
from agent.ops.uploads import PostCheckpoint
from agent.ports import Progress, UploadOutcome
from integrations.base import UploadRequest
from integrations.errors import (
    NeedsRelink,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
)
from storage import accounts, posts
from storage.accounts import LinkedAccount
from storage.identity import Identity
from tests.chat_fixtures import ops_for, real_budgets, upload_now, used
from tests.fakes.platforms import directory

CHUNK = 256 * 1024


def _file(tmp_path: Path, size: int) -> tuple[dict, bytes]:
    data = os.urandom(size)
    path = tmp_path / f"clip-{secrets.token_hex(3)}.mp4"
    path.write_bytes(data)
    return {"kind": "file", "path": str(path)}, data


async def _upload(
    ops: PlatformOps,
    who: Identity,
    account: LinkedAccount,
    source: dict,
    *,
    key: str | None = None,
    request: UploadRequest | None = None,
    progress: Progress | None = None,
    **fields: Any,
) -> UploadOutcome:
    """`source` uploaded to `account` as `who` (title "t", private, a fresh idempotency
    key, unless said otherwise)."""
    return await upload_now(
        ops,
        who,
        account_ref=account.ref,
        source=source,
        request=request or UploadRequest(**{"title": "t", "privacy": "private", **fields}),
        idempotency_key=key or "k-" + secrets.token_hex(4),
        progress=progress,
    )


def _session(google):
    assert len(google.sessions) == 1
    return next(iter(google.sessions.values()))


async def test_upload_publishes_and_is_idempotent(
    deps, google, identity, link_account, tmp_path, pool, redis
):
    account, _, _ = await link_account(identity)
    deps = replace(deps, budgets=real_budgets(redis, deps.platforms))
    ops = ops_for(deps)
    source, data = _file(tmp_path, 5 * CHUNK + 77)
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    request = UploadRequest(title="Launch", privacy="unlisted")
    outcome = await _upload(ops, identity, account, source, request=request, progress=progress)
    session = _session(google)
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert outcome.result.post_id == session.video_id
    assert seen[-1] == (len(data), len(data))
    post = await posts.get(pool, outcome.post_row_id)
    assert post.status == "published" and post.platform_post_id == session.video_id
    assert not post.has_session  # the secret session URI is dropped once done
    assert await used(deps.budgets, "youtube") == {"units": 1600, "uploads": 1}
    # Same key again: same video, no new session, no new charge.
    again = await _upload(ops, identity, account, source, key=post.idempotency_key, request=request)
    assert again.result.post_id == outcome.result.post_id
    assert again.post_row_id == outcome.post_row_id
    assert len(google.sessions) == 1
    assert await used(deps.budgets, "youtube") == {"units": 1600, "uploads": 1}


async def test_session_uri_is_stored_encrypted(
    deps, google, identity, link_account, tmp_path, pool
):
    account, _, _ = await link_account(identity)
    google.faults.hold_at_byte = CHUNK + 10
    ops = ops_for(deps)
    source, _ = _file(tmp_path, 3 * CHUNK)
    key = "k-" + secrets.token_hex(4)
    task = asyncio.create_task(_upload(ops, identity, account, source, key=key))
    await asyncio.wait_for(google.held.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await pool.fetchrow(
        "SELECT upload_session, bytes_confirmed, status FROM posts WHERE idempotency_key = $1", key
    )
    session_id = _session(google).id
    assert row["upload_session"] is not None
    assert session_id.encode() not in bytes(row["upload_session"])
    assert row["bytes_confirmed"] == CHUNK and row["status"] == "uploading"
    await pool.execute("UPDATE posts SET status = 'failed' WHERE idempotency_key = $1", key)


async def test_checkpoint_rewrites_the_session_only_when_it_changes(
    deps, identity, link_account, pool
):
    account, _, _ = await link_account(identity)
    post, _ = await posts.create_or_get(
        pool,
        account_id=account.id,
        platform=account.platform,
        idempotency_key="k-" + secrets.token_hex(4),
        title="t",
        caption=None,
        source={},
        metadata={},
        bytes_total=100,
    )
    checkpoint = PostCheckpoint(ops_for(deps), post_id=post.id)

    async def stored() -> tuple[bytes | None, int]:
        row = await pool.fetchrow(
            "SELECT upload_session, bytes_confirmed FROM posts WHERE id = $1", post.id
        )
        session = row["upload_session"]
        return (bytes(session) if session is not None else None), row["bytes_confirmed"]

    await checkpoint.save("https://up/s?id=1", 0)
    first, _ = await stored()
    await checkpoint.save("https://up/s?id=1", 40)
    # The offset moved; the secret was neither encrypted again nor rewritten (a fresh
    # encryption would differ: every envelope has its own nonce).
    assert await stored() == (first, 40)
    await checkpoint.save("https://up/s?id=2", 50)
    second, confirmed = await stored()
    assert second not in (None, first) and confirmed == 50
    assert await PostCheckpoint(ops_for(deps), post_id=post.id).load() == (
        "https://up/s?id=2",
        50,
    )
    await checkpoint.save(None, 0)  # a retry must start again: the session goes
    assert await stored() == (None, 0)
    assert checkpoint.session_saved  # one was stored: its quota was spent
    await pool.execute("UPDATE posts SET status = 'failed' WHERE id = $1", post.id)


async def test_quota_refused_before_any_byte(
    deps, google, identity, link_account, tmp_path, pool, redis
):
    account, _, _ = await link_account(identity)
    deps = replace(deps, budgets=real_budgets(redis, deps.platforms, youtube={"units": 2000}))
    assert (await deps.budgets.reserve("youtube", None, {"units": 1000})).allowed
    ops = ops_for(deps)
    source, _ = _file(tmp_path, CHUNK)
    with pytest.raises(QuotaExceeded) as info:
        await _upload(ops, identity, account, source)
    message = str(info.value)
    assert "needs 1,600" in message and "1,000 of 2,000 remain" in message, message
    assert 0 < info.value.retry_after <= 25 * 3600  # until midnight Pacific
    assert not google.sessions  # nothing was sent
    assert not google.calls_to("/upload/youtube/v3/videos")
    assert (
        await pool.fetchval("SELECT status FROM posts WHERE account_id = $1", account.id)
        == "failed"
    )


async def test_daily_upload_bucket_refuses_too(
    deps, google, identity, link_account, tmp_path, redis
):
    account, _, _ = await link_account(identity)
    deps = replace(deps, budgets=real_budgets(redis, deps.platforms, youtube={"uploads": 1}))
    assert (await deps.budgets.reserve("youtube", None, {"uploads": 1})).allowed
    source, _ = _file(tmp_path, CHUNK)
    with pytest.raises(QuotaExceeded) as info:
        await _upload(ops_for(deps), identity, account, source)
    assert "uploads left today" in str(info.value), str(info.value)
    assert not google.sessions


async def test_refused_session_refunds_quota_and_fails_post(
    deps, google, identity, link_account, tmp_path, pool, redis
):
    account, _, _ = await link_account(identity)
    deps = replace(deps, budgets=real_budgets(redis, deps.platforms))
    google.faults.insert_error = (403, "forbidden")
    source, _ = _file(tmp_path, CHUNK)
    with pytest.raises(PermissionDenied):
        await _upload(ops_for(deps), identity, account, source)
    assert await used(deps.budgets, "youtube") == {"units": 0, "uploads": 0}
    row = await pool.fetchrow("SELECT status, error FROM posts WHERE account_id = $1", account.id)
    assert row["status"] == "failed" and "forbidden" in row["error"]


async def test_401_refreshes_once_and_retries(deps, google, identity, link_account, tmp_path):
    account, _, _ = await link_account(identity)
    google.expire_access_tokens()  # Google says 401 though our copy looks valid
    source, _data = _file(tmp_path, CHUNK + 5)
    outcome = await _upload(ops_for(deps), identity, account, source)
    assert google.refresh_count == 1
    assert outcome.result.post_id == _session(google).video_id


async def test_401_and_refused_refresh_asks_for_relink(
    deps, google, identity, link_account, tmp_path, pool
):
    account, _, raw = await link_account(identity)
    google.expire_access_tokens()
    google.refresh_tokens.pop(raw["refresh_token"])  # revoked at Google
    source, _ = _file(tmp_path, CHUNK)
    with pytest.raises(NeedsRelink) as info:
        await _upload(ops_for(deps), identity, account, source)
    assert "link youtube" in str(info.value)
    assert (await accounts.get_by_id(pool, account.id)).status == "needs_relink"


async def test_private_forced_by_unverified_project_is_reported(
    deps, google, identity, link_account, tmp_path
):
    account, _, _ = await link_account(identity)
    google.faults.force_private = True
    source, _ = _file(tmp_path, CHUNK)
    outcome = await _upload(ops_for(deps), identity, account, source, privacy="public")
    assert outcome.result.privacy == "private" and outcome.result.privacy_forced


async def test_other_workspace_account_is_not_found(
    deps, google, identity, make_identity, link_account, tmp_path
):
    account, _, _ = await link_account(identity)
    stranger = await make_identity()
    ops = ops_for(deps)
    source, _ = _file(tmp_path, CHUNK)
    with pytest.raises(NotFound):
        await _upload(ops, stranger, account, source)
    with pytest.raises(NotFound):
        await ops.unlink(stranger, account.ref)
    with pytest.raises(NotFound):
        await ops.metrics(stranger, account_ref=account.ref)
    # Same workspace, another user: not theirs either.
    colleague = await make_identity(workspace=identity.workspace_external_id)
    with pytest.raises(NotFound):
        await ops.unlink(colleague, account.ref)
    assert not google.sessions and not google.revoked


async def test_kill_mid_upload_then_resume_after_restart(
    deps, google, identity, link_account, tmp_path, pool, cipher, youtube, redis
):
    account, _, _ = await link_account(identity)
    google.faults.hold_at_byte = 4 * CHUNK + 1234
    source, data = _file(tmp_path, 10 * CHUNK + 99)
    key = "kill-" + secrets.token_hex(4)
    first = ops_for(deps)
    task = asyncio.create_task(
        _upload(first, identity, account, source, key=key, title="Resumed", tags=("x",))
    )
    await asyncio.wait_for(google.held.wait(), 10)
    task.cancel()  # the worker dies mid-chunk
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await pool.fetchrow(
        "SELECT id, status, bytes_confirmed FROM posts WHERE idempotency_key = $1", key
    )
    assert row["status"] == "uploading" and row["bytes_confirmed"] == 4 * CHUNK

    from agent.context import AgentConfig

    restarted = PlatformOps(
        pool=pool,
        cipher=cipher,
        platforms=directory(youtube),
        budgets=NoLimits(),
        config=AgentConfig(),
    )
    outcome = await restarted.run_upload(row["id"])  # the job, picked up by another worker
    session = _session(google)
    assert session.received == len(data)
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    # Resumed from the server's byte (4 chunks + 1234), not from our last checkpoint.
    assert session.wire_bytes == len(data)
    assert len(google.videos_created) == 1
    post = await posts.get(pool, row["id"])
    assert post.status == "published" and post.platform_post_id == session.video_id
    assert session.metadata["snippet"]["tags"] == ["x"]
    assert outcome.result.post_id == session.video_id
    # Run again (the engine lost track of the finish): the same video, no new work.
    again = await restarted.run_upload(row["id"])
    assert again.result.post_id == session.video_id
    assert len(google.videos_created) == 1


async def test_redis_down_refuses_an_upload_as_unavailable_not_as_spent_quota(
    deps, google, identity, link_account, tmp_path, pool, tmp_path_factory
):
    """With the limiter unreachable nothing is sent, and the person reads "try again
    shortly", never a made-up "0 of 10000 remain"."""
    from storage.redis import RedisHandle

    account, _, _ = await link_account(identity)
    dead = RedisHandle(url="redis://127.0.0.1:1/0", data_dir=tmp_path_factory.mktemp("r"))
    await dead.open()
    try:
        deps = replace(deps, budgets=real_budgets(dead, deps.platforms))
        source, _ = _file(tmp_path, CHUNK)
        with pytest.raises(RateLimited) as info:
            await _upload(ops_for(deps), identity, account, source)
    finally:
        await dead.close()
    assert str(info.value) == "Rate limits are unavailable right now; try again shortly."
    assert "remain" not in str(info.value)
    assert not google.sessions
    row = await pool.fetchrow("SELECT status, error FROM posts WHERE account_id = $1", account.id)
    assert row["status"] == "failed" and "try again shortly" in row["error"]
