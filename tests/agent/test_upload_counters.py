"""Upload bytes and resumes are counted for Prometheus, by platform."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest
from prometheus_client import REGISTRY

from integrations.base import UploadRequest
from tests.chat_fixtures import ops_for, upload_now

CHUNK = 256 * 1024


def _count(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"platform": "youtube"}) or 0.0


async def test_a_resumed_upload_counts_one_resume_and_its_bytes(
    deps, google, identity, link_account, tmp_path, pool
):
    account, _, _ = await link_account(identity)
    data = os.urandom(6 * CHUNK + 7)
    path = tmp_path / f"clip-{secrets.token_hex(3)}.mp4"
    path.write_bytes(data)
    google.faults.hold_at_byte = 2 * CHUNK + 5
    key = "count-" + secrets.token_hex(4)
    sent, resumes = _count("socialops_upload_bytes_total"), _count("socialops_upload_resumes_total")
    task = asyncio.create_task(
        upload_now(
            ops_for(deps),
            identity,
            account_ref=account.ref,
            source={"kind": "file", "path": str(path)},
            request=UploadRequest(title="Counted", privacy="private"),
            idempotency_key=key,
        )
    )
    await asyncio.wait_for(google.held.wait(), 10)
    task.cancel()  # the worker dies mid-chunk
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _count("socialops_upload_resumes_total") == resumes  # nothing resumed yet
    post_id = await pool.fetchval("SELECT id FROM posts WHERE idempotency_key = $1", key)

    await ops_for(deps).run_upload(post_id)  # another worker picks the job up

    assert _count("socialops_upload_resumes_total") == resumes + 1
    assert _count("socialops_upload_bytes_total") == sent + len(data)
