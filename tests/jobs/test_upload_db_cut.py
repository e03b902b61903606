"""Postgres connections terminated mid-upload: the user is told success, once; one video.

The real engine (PgQueuer) runs the upload job on a pool of its own; while the fake
Google holds the upload half way, every backend of that pool (the engine's listener
and dequeue connections, the job's idle pooled ones) is killed with
`pg_terminate_backend`. The upload goes on from Google's byte, and the job's one
status message ends "Done" once, with no failure said in between.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from agent.context import AgentConfig
from agent.jobs.upload import UploadJob, queue_upload, run_upload_job
from agent.limits import NoLimits
from agent.ops import PlatformOps
from bot.worker import JobKind
from integrations.base import UploadRequest
from integrations.youtube import YouTubePlatform
from storage import identity, job_runs, posts, queue
from storage.crypto import TokenCipher
from storage.db import migrate
from tests.fakes.google import FakeGoogle
from tests.fakes.google_env import link_channel
from tests.fakes.platforms import directory
from tests.jobs_fixtures import run_worker_until

CHUNK = 256 * 1024
WORKER_APP = "jobs-under-test"


@pytest.fixture
async def pools(empty_db: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    """(the test's pool, the worker's pool): the worker's backends carry a name to kill."""
    mine = await asyncpg.create_pool(empty_db, min_size=1, max_size=3)
    await migrate(mine)
    worker = await asyncpg.create_pool(
        empty_db, min_size=2, max_size=8, server_settings={"application_name": WORKER_APP}
    )
    try:
        yield mine, worker
    finally:
        await worker.close()
        await mine.close()


async def test_connections_terminated_mid_upload_the_user_is_told_success_once(
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
    google: FakeGoogle,
    youtube: YouTubePlatform,
    cipher: TokenCipher,
    tmp_path: Path,
) -> None:
    mine, worker_pool = pools
    who = await identity.resolve(
        mine, frontend="local", workspace_external_id="W1", user_external_id="U1"
    )
    account, _, _ = await link_channel(mine, cipher, google, who, google.add_channel("Cut"))

    def ops_on(pool: asyncpg.Pool) -> PlatformOps:
        return PlatformOps(
            pool=pool,
            cipher=cipher,
            platforms=directory(youtube),
            budgets=NoLimits(),
            config=AgentConfig(),
        )

    data = os.urandom(20 * CHUNK + 99)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    google.faults.pause_at_byte = 10 * CHUNK + 1000
    run = await queue_upload(
        mine,
        ops_on(mine),
        UploadJob(
            identity=who,
            account_ref=account.ref,
            source={"kind": "file", "path": str(path)},
            request=UploadRequest(title="through a cut", privacy="private"),
            idempotency_key="cut-" + secrets.token_hex(4),
            label="upload 'clip'",
            reply_to={"frontend": "test"},
        ),
    )

    shown: list[tuple[str, str]] = []

    class Board:
        async def post(self, reply_to: dict[str, Any], text: str) -> str | None:
            shown.append(("post", text))
            return "msg-1"

        async def edit(self, reply_to: dict[str, Any], message_ref: str, text: str) -> None:
            shown.append((message_ref, text))

    ops = ops_on(worker_pool)

    async def upload(payload: dict[str, Any]) -> None:
        await run_upload_job(worker_pool, ops, Board(), int(payload["run"]))

    killed: list[int] = []

    async def cut_then_resume() -> None:
        await google.paused.wait()
        rows = await mine.fetch(
            "SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            WORKER_APP,
        )
        killed.extend(1 for r in rows if r["gone"])
        await asyncio.sleep(0.5)  # the dead connections are noticed before bytes flow again
        google.resume.set()

    async def finished() -> bool:
        current = await job_runs.get(mine, run.id)
        return current is not None and current.ended

    cutter = asyncio.create_task(cut_then_resume())
    try:
        await run_worker_until(worker_pool, {queue.UPLOAD: JobKind(upload)}, finished, timeout=60)
    finally:
        google.resume.set()
        await cutter

    assert len(killed) >= 2, killed  # the engine's connections and the job's were cut
    [session] = google.sessions.values()
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert len(google.videos_created) == 1
    assert session.wire_bytes < 1.5 * len(data)
    ended = await job_runs.get(mine, run.id)
    assert ended is not None and ended.state == "done", ended
    post = await posts.get(mine, ended.post_id)
    assert post is not None and post.status == "published"
    texts = [text for _, text in shown]
    finals = [t for t in texts if t.startswith("Done:")]
    assert len(finals) == 1 and texts[-1] == finals[0] and session.video_id in finals[0], texts
    assert all(ref in ("post", "msg-1") for ref, _ in shown)
    assert [ref for ref, _ in shown].count("post") == 1  # one status message, edited in place
    said = " ".join(texts).lower()
    assert "failed" not in said and "went wrong" not in said and "could not" not in said, texts
    assert await worker_pool.fetchval("SELECT count(*) FROM pgqueuer") == 0
