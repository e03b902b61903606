"""A worker process is SIGKILLed mid-chunk; a fresh PlatformOps resumes from Google's offset."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

from agent.ops import UPLOAD_LOCK_NS
from storage import posts
from tests.chat_fixtures import ops_for
from tests.fakes.google import youtube_settings

CHUNK = 256 * 1024
ROOT = Path(__file__).resolve().parents[2]


async def test_sigkill_mid_upload_then_resume(
    deps, google, identity, link_account, tmp_path, pool, pg_dsn, cipher_spec, youtube
):
    account, _, _ = await link_account(identity)
    data = os.urandom(12 * CHUNK + 321)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    held_at = 7 * CHUNK + 4321
    google.faults.hold_at_byte = held_at
    key = "sigkill-" + secrets.token_hex(4)
    spec = {
        "dsn": pg_dsn,
        "keys": cipher_spec,
        "settings": youtube_settings(google.base, google),
        "identity": dataclasses.asdict(identity),
        "account_ref": account.ref,
        "path": str(path),
        "key": key,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.agent._upload_child", json.dumps(spec), cwd=str(ROOT)
    )
    try:
        await asyncio.wait_for(google.held.wait(), 60)
    finally:
        child.kill()  # SIGKILL: no cleanup, no finally blocks, sockets just vanish
        assert await child.wait() == -9

    row = await pool.fetchrow(
        "SELECT id, status, bytes_confirmed FROM posts WHERE idempotency_key = $1", key
    )
    assert row["status"] == "uploading" and row["bytes_confirmed"] == 7 * CHUNK
    # Postgres drops the dead worker's advisory lock when it notices the socket closed.
    for _ in range(100):
        locked = await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2",
            UPLOAD_LOCK_NS,
            row["id"],
        )
        if not locked:
            break
        await asyncio.sleep(0.05)
    assert not locked

    assert await ops_for(deps).resume_unfinished() >= 1
    [session] = google.sessions.values()
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert session.wire_bytes == len(data)  # resumed at Google's byte, nothing twice
    assert len(google.videos_created) == 1
    post = await posts.get(pool, row["id"])
    assert post.status == "published" and post.platform_post_id == session.video_id
