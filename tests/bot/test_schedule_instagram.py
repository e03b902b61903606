"""A scheduled Reel: Instagram has no scheduling API, so a deferred job publishes it at
its time, against the fake Instagram (which fetches the video from our signed URL)."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from agent.jobs.upload import DueRules, UploadJob, queue_upload, run_upload_job
from bot.worker import JobKind
from integrations.base import UploadRequest
from integrations.instagram.plugin import PLUGIN as INSTAGRAM
from storage import job_runs, posts, queue
from tests.bot.test_media_publish import PUBLIC, World, world  # noqa: F401
from tests.jobs_fixtures import run_worker_until


@pytest.fixture
def pool(fresh_pool: asyncpg.Pool) -> asyncpg.Pool:
    """A database of its own: the engine's queue holds only this test's jobs."""
    return fresh_pool


async def _quiet(frontend: str, reply_to: dict[str, Any], text: str) -> bool:
    raise AssertionError(f"nobody should be told privately: {text}")


class Board:
    async def post(self, reply_to: dict[str, Any], text: str) -> str | None:
        return None

    async def edit(self, reply_to: dict[str, Any], message_ref: str, text: str) -> None:
        return None


async def test_deferred_reel_is_published_at_its_time(
    world: World,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    assert not INSTAGRAM.capabilities(INSTAGRAM.settings_type()).scheduling.native
    path = tmp_path / "reel.mp4"
    path.write_bytes(os.urandom(400_000))
    at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    ops = world.ops_for(PUBLIC)
    run = await queue_upload(
        pool,
        ops,
        UploadJob(
            identity=world.identity,
            account_ref=world.account.ref,
            source={"kind": "file", "path": str(path)},
            request=UploadRequest(title="Later", privacy="public", publish_at=at),
            idempotency_key="ig-" + secrets.token_hex(4),
            label="upload 'Later'",
            reply_to={},
            run_at=at,
        ),
    )
    assert world.user.published_count == 0 and not world.fake.containers

    async def handler(payload: dict[str, Any]) -> None:
        await run_upload_job(
            pool,
            ops,
            Board(),
            int(payload["run"]),
            deferred=bool(payload.get("deferred")),
            due=DueRules(grace=timedelta(minutes=15), notify=_quiet),
        )

    async def ended() -> bool:
        current = await job_runs.get(pool, run.id)
        return current is not None and current.ended

    await run_worker_until(pool, {queue.UPLOAD: JobKind(handler)}, ended, workers=2)
    assert world.user.published_count == 1
    assert run.post_id is not None
    post = await posts.get(pool, run.post_id)
    assert post is not None and post.status == "published"
    assert post.updated_at >= at
    [container] = world.fake.containers.values()
    assert container.fetched_bytes == 400_000
