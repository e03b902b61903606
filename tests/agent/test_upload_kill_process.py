"""A worker process is SIGKILLed at 60 % of an upload; another worker resumes the same job.

Real engine (PgQueuer) on the test's Postgres: the dead worker's job is handed to
the other worker once its heartbeat is stale, the upload continues from Google's
byte, one video is created, and the job's one status message ends "Done" once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from agent.jobs.upload import UploadJob, queue_upload, run_upload_job
from bot.worker import JobKind
from integrations.base import UploadRequest
from storage import job_runs, posts, queue
from tests.chat_fixtures import ops_for
from tests.fakes.google import youtube_settings
from tests.jobs_fixtures import run_worker_until

CHUNK = 256 * 1024
ROOT = Path(__file__).resolve().parents[2]


async def test_sigkill_at_60_percent_another_worker_resumes(
    deps, google, identity, link_account, tmp_path, pool, pg_dsn, cipher_spec, youtube
):
    account, _, _ = await link_account(identity)
    data = os.urandom(20 * CHUNK + 321)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    google.faults.hold_at_byte = 12 * CHUNK + 4321  # 60 % of the file
    tag = "kill-" + secrets.token_hex(4)
    ops = ops_for(deps)
    run = await queue_upload(
        pool,
        ops,
        UploadJob(
            identity=identity,
            account_ref=account.ref,
            source={"kind": "file", "path": str(path)},
            request=UploadRequest(title="from a worker that dies", privacy="private"),
            idempotency_key=tag,
            label="upload 'clip'",
            reply_to={"frontend": "test", "tag": tag},
        ),
    )
    board_file = tmp_path / "board.jsonl"
    spec = {
        "dsn": pg_dsn,
        "keys": cipher_spec,
        "settings": youtube_settings(google.base, google),
        "identity": dataclasses.asdict(identity),
        "run": run.id,
        "board": str(board_file),
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.agent._upload_child", json.dumps(spec), cwd=str(ROOT)
    )
    try:
        await asyncio.wait_for(google.held.wait(), 60)
    finally:
        child.kill()  # SIGKILL: no cleanup, no finally blocks, sockets just vanish
        assert await child.wait() == -9
    killed_at = time.monotonic()

    post_row = await pool.fetchrow(
        "SELECT id, status, bytes_confirmed FROM posts WHERE idempotency_key = $1", tag
    )
    assert post_row["status"] == "uploading" and post_row["bytes_confirmed"] == 12 * CHUNK

    shown: list[tuple[str, str]] = []

    class Board:
        async def post(self, reply_to: dict[str, Any], text: str) -> str | None:
            shown.append(("post", text))
            return "msg-2"

        async def edit(self, reply_to: dict[str, Any], message_ref: str, text: str) -> None:
            shown.append((message_ref, text))

    async def upload(payload: dict[str, Any]) -> None:
        if payload["run"] == run.id:
            await run_upload_job(pool, ops, Board(), payload["run"])

    async def finished() -> bool:
        current = await job_runs.get(pool, run.id)
        return current is not None and current.ended

    await run_worker_until(pool, {queue.UPLOAD: JobKind(upload)}, finished, timeout=30)
    assert time.monotonic() - killed_at < 10 + 5  # resumed and finished within seconds

    [session] = google.sessions.values()
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert session.wire_bytes < 1.5 * len(data)
    assert len(google.videos_created) == 1
    post = await posts.get(pool, post_row["id"])
    assert post.status == "published" and post.platform_post_id == session.video_id

    before = [json.loads(line) for line in board_file.read_text().splitlines()]
    last = before[-1]["text"]
    assert before[0]["op"] == "post" and last.startswith("upload 'clip': uploading ")
    percent = int(last.rsplit(" ", 1)[1].rstrip("%"))
    assert 50 <= percent <= 60
    # The resuming worker edits the dead worker's message; it never posts another.
    assert all(ref == "msg-1" for ref, _ in shown), shown
    assert shown[0][1] == f"upload 'clip': resumed after a restart, {percent}%"
    finals = [text for _, text in shown if text.startswith("Done:")]
    assert len(finals) == 1 and shown[-1][1] == finals[0] and session.video_id in finals[0]
    assert not any("failed" in text.lower() for _, text in shown)
    ended = await job_runs.get(pool, run.id)
    assert ended.state == "done" and ended.attempts == 2
