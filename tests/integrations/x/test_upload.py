"""Chunked video upload and posting against the fake: order, polling, resume, exactly once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from agent.sources import SourceOpeners
from integrations.base import TokenSet, UploadRequest
from integrations.errors import (
    InvalidRequest,
    PermissionDenied,
    PlatformUnavailable,
    QuotaExceeded,
)
from integrations.http import Guards, RetryPolicy, make_client
from integrations.x.plugin import PLUGIN
from integrations.x.upload import UploadState
from tests.fakes.platforms import build
from tests.fakes.x import use_clock, x_settings
from tests.integrations.x.conftest import SEGMENT, MemoryCheckpoint, MemorySource, XEnv

REQUEST = UploadRequest(
    title="Launch day",
    description="Our new studio tour.",
    tags=("studio", "tour"),
    privacy="public",
)


class Died(Exception):
    """Stands in for the worker process dying at a chosen point."""


class DyingCheckpoint(MemoryCheckpoint):
    """Saves normally, and 'dies' right after the save whose confirmed bytes reach `at`."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        await super().save(session_uri, confirmed)
        if session_uri is not None and confirmed >= self.at and self.at >= 0:
            self.at = -1
            raise Died()


def _state(checkpoint: MemoryCheckpoint) -> UploadState:
    state = UploadState.decode(checkpoint.session)
    assert state is not None
    return state


async def test_segments_in_order_polling_then_one_post_with_the_media(x: XEnv) -> None:
    data = os.urandom(5 * SEGMENT + 1234)
    checkpoint = MemoryCheckpoint()
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    result = await x.make().upload(
        x.token, MemorySource(data), REQUEST, checkpoint=checkpoint, progress=on_progress
    )
    [media] = x.fake.media.values()
    assert media.segments == {i: SEGMENT for i in range(5)} | {5: 1234}
    assert (
        x.fake.media_bytes == len(data) and x.fake.requests["POST /2/media/upload/:id/append"] == 6
    )
    # Finalize said pending (2 s), then two polls said in_progress (2 s each), the third succeeded.
    assert x.clock.sleeps == [2, 2, 2] and media.polls == 3 and media.state == "succeeded"
    [post] = x.fake.posts_by(x.user)
    assert post.media_keys == [media.key] and result.post_id == post.id
    assert post.text == "Launch day\n\nOur new studio tour.\n\n#studio #tour"
    assert result.url == f"https://x.com/i/status/{post.id}" and result.privacy == "public"
    state = _state(checkpoint)
    assert state.phase == "posted" and state.post_id == post.id
    assert [c for _, c in checkpoint.saves[:3]] == [0, SEGMENT, 2 * SEGMENT]
    assert progress[-1] == (len(data), len(data)) and len(progress) <= 11


async def test_a_dropped_connection_resumes_from_the_last_confirmed_segment(x: XEnv) -> None:
    data = os.urandom(8 * SEGMENT)
    x.fake.drop_during_append(segment=3, after_bytes=SEGMENT // 2)
    checkpoint = MemoryCheckpoint()
    with pytest.raises(PlatformUnavailable) as info:
        await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    assert info.value.retryable
    assert checkpoint.confirmed == 3 * SEGMENT and _state(checkpoint).next_segment == 3
    source = MemorySource(data)
    result = await x.make().upload(x.token, source, REQUEST, checkpoint=checkpoint)
    assert source.opens == [3 * SEGMENT]  # nothing before the failed segment is read again
    assert x.fake.requests["POST /2/media/upload/initialize"] == 1
    [post] = x.fake.posts_by(x.user)
    assert result.post_id == post.id
    assert x.fake.media_bytes == len(data)
    assert len(data) < x.fake.append_body_bytes < 1.5 * len(data)


async def test_the_shared_transport_resends_a_dropped_segment_in_the_same_call(x: XEnv) -> None:
    data = os.urandom(4 * SEGMENT)
    x.fake.drop_during_append(segment=1, after_bytes=1000)
    guards = Guards(retry=RetryPolicy(base_delay=0.001, max_delay=0.002))
    async with make_client(platform="x", guards=guards, timeout=10) as http:
        platform = build(PLUGIN, http, **x_settings(x.base, x.fake))
        use_clock(platform, x.clock)
        result = await platform.upload(
            x.token, MemorySource(data), REQUEST, checkpoint=MemoryCheckpoint()
        )
    assert x.fake.requests["POST /2/media/upload/:id/append"] == 5  # segment 1 twice
    assert x.fake.media_bytes == len(data)
    assert [p.id for p in x.fake.posts_by(x.user)] == [result.post_id]


async def test_a_file_is_read_one_segment_at_a_time_and_arrives_whole(x: XEnv, tmp_path) -> None:
    data = os.urandom(3 * SEGMENT + 1234)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    source = SourceOpeners().open({"kind": "file", "path": str(path)})
    result = await x.make().upload(x.token, source, REQUEST, checkpoint=MemoryCheckpoint())
    assert x.fake.requests["POST /2/media/upload/:id/append"] == 4
    assert x.fake.media_bytes == len(data)
    [post] = x.fake.posts_by(x.user)
    assert result.post_id == post.id


class ClosingSource(MemorySource):
    """A MemorySource that counts the bytes it hands out and whether it was closed."""

    pulled: int = 0
    closed: bool = False

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        try:
            async for piece in super().open(offset):
                self.pulled += len(piece)
                yield piece
        finally:
            self.closed = True


async def test_the_next_segment_is_read_ahead_and_dropped_when_an_append_fails(x: XEnv) -> None:
    data = os.urandom(8 * SEGMENT)
    x.fake.drop_during_append(segment=2, after_bytes=1000)
    source = ClosingSource(data)
    with pytest.raises(PlatformUnavailable):
        await x.make().upload(x.token, source, REQUEST, checkpoint=MemoryCheckpoint())
    # Segments 0-2 were sent; at most segment 3 was read ahead, then the source closed.
    assert 3 * SEGMENT < source.pulled <= 4 * SEGMENT
    assert source.closed and x.fake.media_bytes == 2 * SEGMENT


async def test_a_restarted_worker_continues_the_same_media(x: XEnv) -> None:
    data = os.urandom(6 * SEGMENT)
    checkpoint = DyingCheckpoint(at=2 * SEGMENT)
    with pytest.raises(Died):
        await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    media_id = _state(checkpoint).media_id
    source = MemorySource(data)
    result = await x.make().upload(x.token, source, REQUEST, checkpoint=checkpoint)
    assert source.opens == [2 * SEGMENT]
    assert list(x.fake.media) == [media_id] and x.fake.media_bytes == len(data)
    assert x.fake.append_body_bytes < 1.5 * len(data)
    assert [p.id for p in x.fake.posts_by(x.user)] == [result.post_id]


async def test_a_failed_finalize_is_finalized_again_without_resending(x: XEnv) -> None:
    data = os.urandom(3 * SEGMENT)
    x.fake.fail_finalize_once(503)
    checkpoint = MemoryCheckpoint()
    with pytest.raises(PlatformUnavailable) as info:
        await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    assert info.value.status == 503
    assert _state(checkpoint).phase == "append" and checkpoint.confirmed == len(data)
    source = MemorySource(data)
    await x.make().upload(x.token, source, REQUEST, checkpoint=checkpoint)
    assert source.opens == [] and x.fake.media_bytes == len(data)
    assert x.fake.requests["POST /2/media/upload/:id/finalize"] == 2
    assert len(x.fake.posts_by(x.user)) == 1


async def test_a_restart_during_processing_polls_instead_of_finalizing(x: XEnv) -> None:
    data = os.urandom(2 * SEGMENT)
    checkpoint = MemoryCheckpoint()
    original = checkpoint.save

    async def save(session_uri: str | None, confirmed: int) -> None:
        await original(session_uri, confirmed)
        state = UploadState.decode(session_uri)
        if state is not None and state.phase == "finalized":
            raise Died()

    checkpoint.save = save  # type: ignore[method-assign]
    with pytest.raises(Died):
        await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    fresh = MemoryCheckpoint(checkpoint.session, checkpoint.confirmed)
    slept = len(x.clock.sleeps)
    await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=fresh)
    assert x.fake.requests["POST /2/media/upload/:id/finalize"] == 1
    assert x.clock.sleeps[slept] == 2  # kept to check_after_secs across the restart
    assert len(x.fake.posts_by(x.user)) == 1


async def test_after_the_post_a_restart_does_not_post_again(x: XEnv) -> None:
    data = os.urandom(SEGMENT)
    checkpoint = MemoryCheckpoint()
    first = await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    calls = sum(x.fake.requests.values())
    again = await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    assert again.post_id == first.post_id and sum(x.fake.requests.values()) == calls


async def test_a_lost_post_answer_finds_the_post_instead_of_posting_twice(x: XEnv) -> None:
    data = os.urandom(SEGMENT)
    checkpoint = MemoryCheckpoint()
    first = await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    # As if the worker died after sending the post and before saving its answer.
    state = _state(checkpoint)
    checkpoint.session = replace(state, phase="posting", post_id=None).encode()
    again = await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    assert again.post_id == first.post_id
    assert x.fake.requests["POST /2/tweets"] == 1 and len(x.fake.posts_by(x.user)) == 1


async def test_a_post_that_never_went_out_is_sent_on_resume(x: XEnv) -> None:
    data = os.urandom(SEGMENT)
    x.fake.fail_next("POST /2/tweets", 503)
    checkpoint = MemoryCheckpoint()
    with pytest.raises(PlatformUnavailable):
        await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    assert _state(checkpoint).phase == "posting"
    result = await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    assert [p.id for p in x.fake.posts_by(x.user)] == [result.post_id]
    assert x.fake.requests["POST /2/media/upload/:id/append"] == 1


async def test_an_expired_media_id_starts_a_new_upload(x: XEnv) -> None:
    data = os.urandom(4 * SEGMENT)
    x.fake.drop_during_append(segment=2, after_bytes=1000)
    checkpoint = MemoryCheckpoint()
    with pytest.raises(PlatformUnavailable):
        await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    old = _state(checkpoint).media_id
    x.fake.expire_media(old)  # X forgot it before its announced expiry
    result = await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    assert x.fake.requests["POST /2/media/upload/initialize"] == 2
    [post] = x.fake.posts_by(x.user)
    assert post.id == result.post_id and post.media_keys != [f"7_{old}"]


async def test_a_locally_expired_media_id_is_not_even_tried(x: XEnv) -> None:
    data = os.urandom(2 * SEGMENT)
    x.fake.drop_during_append(segment=1, after_bytes=1000)
    checkpoint = MemoryCheckpoint()
    with pytest.raises(PlatformUnavailable):
        await x.make().upload(x.token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    await x.clock.sleep(x.fake.media_ttl)  # a day later (with a renewed sign-in)
    token = await x.make().refresh(x.token)
    appends = x.fake.requests["POST /2/media/upload/:id/append"]
    await x.make().upload(token, MemorySource(data), REQUEST, checkpoint=checkpoint)
    assert x.fake.requests["POST /2/media/upload/initialize"] == 2
    assert x.fake.requests["POST /2/media/upload/:id/append"] == appends + 2


async def test_failed_processing_is_explained_and_clears_the_checkpoint(x: XEnv) -> None:
    x.fake.plan_processing(pending=1, in_progress=0, check_after_secs=1, fail="InvalidMedia")
    checkpoint = MemoryCheckpoint()
    with pytest.raises(InvalidRequest) as info:
        await x.make().upload(
            x.token, MemorySource(os.urandom(SEGMENT)), REQUEST, checkpoint=checkpoint
        )
    assert info.value.reason == "processing_failed" and "InvalidMedia" in str(info.value)
    assert checkpoint.session is None and not x.fake.posts


async def test_processing_beyond_the_timeout_keeps_the_checkpoint(x: XEnv) -> None:
    x.fake.plan_processing(pending=1, in_progress=50, check_after_secs=5)
    checkpoint = MemoryCheckpoint()
    platform = x.make(x_processing_timeout_seconds=12)
    with pytest.raises(PlatformUnavailable) as info:
        await platform.upload(
            x.token, MemorySource(os.urandom(SEGMENT)), REQUEST, checkpoint=checkpoint
        )
    assert info.value.reason == "processing_timeout" and info.value.retry_after == 5
    assert _state(checkpoint).phase == "finalized" and x.clock.sleeps == [5, 5]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (UploadRequest(title="t", privacy="private"), "privacy_unsupported"),
        (UploadRequest(title="x" * 281, privacy="public"), "caption"),
        (UploadRequest(title="好" * 141, privacy="public"), "caption"),
    ],
)
async def test_refused_before_any_call(x: XEnv, request_: UploadRequest, reason: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        await x.make().upload(
            x.token, MemorySource(b"v" * 100), request_, checkpoint=MemoryCheckpoint()
        )
    assert info.value.reason == reason and sum(x.fake.requests.values()) == 0


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (MemorySource(b""), "empty"),
        (MemorySource(b"v" * 10, mime_type="image/png"), "media_type"),
    ],
)
async def test_unsuitable_files_are_refused_before_any_call(
    x: XEnv, source: MemorySource, reason: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        await x.make().upload(x.token, source, REQUEST, checkpoint=MemoryCheckpoint())
    assert info.value.reason == reason and sum(x.fake.requests.values()) == 0


async def test_duplicate_text_is_permission_denied_with_a_clear_reason(x: XEnv) -> None:
    await x.make().upload(
        x.token, MemorySource(os.urandom(100)), REQUEST, checkpoint=MemoryCheckpoint()
    )
    with pytest.raises(PermissionDenied) as info:
        await x.make().upload(
            x.token, MemorySource(os.urandom(100)), REQUEST, checkpoint=MemoryCheckpoint()
        )
    assert info.value.reason == "duplicate_content" and "already posted" in str(info.value)


async def test_the_24_hour_post_cap_is_a_quota_with_its_reset(x: XEnv) -> None:
    x.fake.post_caps(user=1)
    await x.make().upload(
        x.token, MemorySource(os.urandom(100)), REQUEST, checkpoint=MemoryCheckpoint()
    )
    second = UploadRequest(title="Another one", privacy="public")
    with pytest.raises(QuotaExceeded) as info:
        await x.make().upload(
            x.token, MemorySource(os.urandom(100)), second, checkpoint=MemoryCheckpoint()
        )
    assert info.value.reason == "user_24h_post_cap" and info.value.retry_after == pytest.approx(
        3600, abs=2
    )


async def test_without_media_write_the_upload_is_refused(x: XEnv) -> None:
    raw = x.fake.issue_tokens(x.user, {"tweet.read", "tweet.write", "users.read"})
    with pytest.raises(PermissionDenied):
        await x.make().upload(
            TokenSet(access_token=raw["access_token"]),
            MemorySource(b"v" * 100),
            REQUEST,
            checkpoint=MemoryCheckpoint(),
        )
