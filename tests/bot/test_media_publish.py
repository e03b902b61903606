"""Instagram publishes of local files: Instagram (the fake) fetches the video from our
signed /media/{token} route over loopback, as the real one fetches `video_url`."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from agent.context import AgentConfig
from agent.limits import NoLimits
from agent.media_links import MediaLinks
from agent.ops import PlatformOps
from agent.sources import SourceOpeners
from bot.media_web import build_media_router
from integrations.base import UploadRequest
from integrations.errors import InvalidRequest
from integrations.http import Guards, make_client
from integrations.instagram.plugin import PLUGIN as INSTAGRAM
from storage import accounts, posts
from storage.accounts import LinkedAccount
from tests.chat_fixtures import upload_now
from tests.fakes.instagram import FakeInstagram, FakeUser, instagram_settings
from tests.fakes.platforms import build, directory
from tests.fakes.server import serve_asgi

PUBLIC = "https://bot.example.com"


@dataclass
class World:
    fake: FakeInstagram
    user: FakeUser
    account: LinkedAccount
    identity: Any
    ops_for: Any  # (public_base_url) -> PlatformOps


@pytest.fixture
async def world(pool, redis, cipher, new_identity) -> AsyncIterator[World]:
    # The media route, as the web part serves it, on loopback.
    media = FastAPI()
    links = MediaLinks(cipher=cipher, public_base_url=PUBLIC)
    media.include_router(
        build_media_router(pool=lambda: pool, links=links, opener=SourceOpeners().open)
    )
    async with serve_asgi(media) as media_base:
        # Instagram "resolves" our public host to the loopback server (a stand-in for DNS).
        fake = FakeInstagram(
            fetch_video_urls=True,
            fetch_range_bytes=300_000,
            hosts={"bot.example.com": media_base},
        )
        async with (
            serve_asgi(fake.app) as ig_base,
            make_client(platform="instagram", guards=Guards(), timeout=10) as http,
        ):
            platform = build(INSTAGRAM, http, **instagram_settings(ig_base, fake))
            user = fake.add_user("studio.fern")
            who = await new_identity()
            expires = datetime.now(UTC) + timedelta(days=50)
            async with pool.acquire() as conn:
                account = await accounts.upsert_linked(
                    conn,
                    cipher=cipher,
                    workspace_id=who.workspace_id,
                    owner_id=who.chat_user_id,
                    platform="instagram",
                    external_id=user.user_id,
                    handle=user.username,
                    scopes=["instagram_business_content_publish"],
                    token={
                        "access_token": fake.issue_token(user),
                        "expires_at": expires.isoformat(),
                    },
                    expires_at=expires,
                )

            def ops_at(public_base_url: str) -> PlatformOps:
                return PlatformOps(
                    pool=pool,
                    cipher=cipher,
                    platforms=directory(platform),
                    budgets=NoLimits(),
                    config=AgentConfig(public_base_url=public_base_url),
                )

            yield World(fake, user, account, who, ops_at)


def _file(tmp_path: Path, size: int) -> tuple[dict[str, Any], bytes]:
    data = os.urandom(size)
    path = tmp_path / f"reel-{secrets.token_hex(3)}.mp4"
    path.write_bytes(data)
    return {"kind": "file", "path": str(path)}, data


REQUEST = UploadRequest(title="Behind the scenes", description="Studio day #fern", privacy="public")


async def test_local_file_is_fetched_by_instagram_and_published(world, tmp_path, pool, caplog):
    source, data = _file(tmp_path, 1_000_003)
    caplog.set_level(logging.INFO)
    outcome = await upload_now(
        world.ops_for(PUBLIC),
        world.identity,
        account_ref=world.account.ref,
        source=source,
        request=REQUEST,
        idempotency_key="ig-" + secrets.token_hex(4),
    )
    [container] = world.fake.containers.values()
    # Instagram downloaded exactly our bytes, in ranged parts, from the signed URL.
    assert container.fetch_error is None
    assert container.fetched_bytes == len(data)
    assert container.fetched_sha256 == hashlib.sha256(data).hexdigest()
    assert container.video_url.startswith(f"{PUBLIC}/media/")
    assert source["path"] not in container.video_url and "reel-" not in container.video_url
    gets = [f for f in world.fake.fetches if f.method == "GET"]
    assert len(gets) == 4 and all(f.status == 206 for f in gets)  # 1_000_003 / 300_000
    assert world.fake.fetches[0].method == "HEAD"
    assert world.fake.fetches[0].headers["content-type"] == "video/mp4"
    # ... and the Reel was published and recorded.
    assert world.user.published_count == 1
    assert outcome.result.post_id == world.user.media[0].id
    post = await posts.get(pool, outcome.post_row_id)
    assert post is not None and post.status == "published"
    # The signed URL is nowhere in the post row or in our logs.
    token = container.video_url.rsplit("/", 1)[1]
    assert token not in repr(post)
    ours = [r for r in caplog.records if r.name.startswith(("bot.", "agent.", "integrations."))]
    assert all(token not in f"{r.getMessage()} {r.__dict__}" for r in ours)


async def test_unreachable_url_fails_the_post_with_instagrams_reason(world, tmp_path, pool):
    source, _ = _file(tmp_path, 50_000)
    world.fake.unreachable_video_url()
    key = "ig-" + secrets.token_hex(4)
    with pytest.raises(InvalidRequest) as caught:
        await upload_now(
            world.ops_for(PUBLIC),
            world.identity,
            account_ref=world.account.ref,
            source=source,
            request=REQUEST,
            idempotency_key=key,
        )
    assert "could not be fetched from its URL" in caught.value.user_message
    [container] = world.fake.containers.values()
    assert container.fetched_bytes is None and container.fetch_error
    assert world.user.published_count == 0
    row = await pool.fetchrow("SELECT status, error FROM posts WHERE idempotency_key = $1", key)
    assert row["status"] == "failed" and "fetched" in row["error"]


@pytest.mark.parametrize("base", ["http://localhost:8000", "http://127.0.0.1:8000"])
async def test_localhost_public_base_url_gives_the_clear_error(world, tmp_path, pool, base):
    source, _ = _file(tmp_path, 10_000)
    key = "ig-" + secrets.token_hex(4)
    with pytest.raises(InvalidRequest) as caught:
        await upload_now(
            world.ops_for(base),
            world.identity,
            account_ref=world.account.ref,
            source=source,
            request=REQUEST,
            idempotency_key=key,
        )
    message = caught.value.user_message
    assert "PUBLIC_BASE_URL" in message and "https" in message and base in message
    assert caught.value.reason == "needs_public_url"
    assert world.fake.calls_to("POST", "me/media") == []  # Instagram was never asked
    row = await pool.fetchrow("SELECT status, error FROM posts WHERE idempotency_key = $1", key)
    assert row["status"] == "failed" and "PUBLIC_BASE_URL" in row["error"]


async def test_upload_instagram_with_its_defaults_is_offered_only_where_it_can_work(
    world, tmp_path, pool, make_deps
):
    """`upload instagram "Title"` names no privacy: Instagram's own default (public) is used.
    With a PUBLIC_BASE_URL Instagram cannot reach, no approval is offered at all."""
    from agent.actions import approvals
    from agent.actions.base import ActionError
    from agent.actions.upload import request_upload
    from agent.context import ActionContext

    source, _ = _file(tmp_path, 400_000)
    here = world.ops_for("http://localhost:8000")
    ctx = ActionContext(
        world.identity,
        make_deps(ops=here, platforms=here._platforms, public_base_url="http://localhost:8000"),
    )
    with pytest.raises(ActionError, match="PUBLIC_BASE_URL"):
        await request_upload(
            ctx, platform="ig", account=None, source=source, source_name="r.mp4", title="Hi"
        )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pending_actions WHERE chat_user_id = $1",
            world.identity.chat_user_id,
        )
        == 0
    )

    there = world.ops_for(PUBLIC)
    ctx = ActionContext(
        world.identity, make_deps(ops=there, platforms=there._platforms, public_base_url=PUBLIC)
    )
    offered = await request_upload(
        ctx, platform="ig", account=None, source=source, source_name="r.mp4", title="Hi"
    )
    assert offered.approval is not None and "(public)" in offered.approval.summary
    await approvals.resolve(ctx, offered.approval.action_id, approved=True)
    post_id = await pool.fetchval(
        "SELECT id FROM posts WHERE account_id = $1 AND status <> 'failed'", world.account.id
    )
    assert post_id is not None  # queued by the approval; the worker's job runs it:
    outcome = await there.run_upload(post_id)
    assert world.user.published_count == 1
    assert outcome.result.privacy == "public"
