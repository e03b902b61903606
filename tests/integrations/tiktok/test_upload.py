"""Direct posts against the fake: creator info, privacy, chunks, polling, resuming."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from integrations.base import UploadRequest
from integrations.errors import InvalidRequest, PermissionDenied, PlatformUnavailable
from integrations.tiktok.upload import decode_session, encode_session
from tests.fakes.google import MemoryCheckpoint, MemorySource
from tests.fakes.tiktok import CREATOR_INFO, DIRECT_INIT, STATUS, UPLOAD, Publish
from tests.integrations.tiktok.conftest import MIB, TT


def _only(tt: TT) -> Publish:
    assert len(tt.fake.publishes) == 1
    return next(iter(tt.fake.publishes.values()))


def _request(privacy: str = "private", title: str = "Launch day", **kw: Any) -> UploadRequest:
    return UploadRequest(title=title, privacy=privacy, **kw)


class LosingCheckpoint(MemoryCheckpoint):
    """Loses every save after the first `keep`: a process that died before writing."""

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        if len(self.saves) < self.keep:
            await super().save(session_uri, confirmed)
        else:
            self.saves.append(-1)


async def test_small_video_goes_in_one_chunk_after_creator_info(tt: TT) -> None:
    data = os.urandom(3 * MIB)
    checkpoint = MemoryCheckpoint()
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    request = _request(description="Behind the scenes", tags=("studio", "#fern"))
    result = await tt.platform.upload(
        tt.token, MemorySource(data), request, checkpoint=checkpoint, progress=on_progress
    )
    publish = _only(tt)
    assert publish.sha256 == hashlib.sha256(data).hexdigest()
    order = [c.path for c in tt.fake.calls if c.path in (CREATOR_INFO, DIRECT_INIT, UPLOAD)]
    assert order == [CREATOR_INFO, DIRECT_INIT, UPLOAD]  # creator info is consulted first
    init = tt.fake.calls_to(DIRECT_INIT)[0].body
    assert init["source_info"] == {
        "source": "FILE_UPLOAD",
        "video_size": len(data),
        "chunk_size": len(data),
        "total_chunk_count": 1,
    }
    assert init["post_info"]["title"] == "Launch day\n\nBehind the scenes\n\n#studio #fern"
    assert init["post_info"]["privacy_level"] == "SELF_ONLY"
    # Interactions stay off unless the settings allow them.
    assert init["post_info"]["disable_comment"] is True
    assert init["post_info"]["disable_duet"] is True and init["post_info"]["disable_stitch"] is True
    assert publish.chunk_puts == 1 and publish.wire_bytes == len(data)
    assert result.privacy == "private" and not result.privacy_forced
    assert result.post_id == publish.id and result.url is None  # private posts get no public id
    assert progress[-1] == (len(data), len(data))
    assert checkpoint.confirmed == len(data)


async def test_multi_chunk_upload_merges_the_trailing_bytes_into_the_last_chunk(tt: TT) -> None:
    data = os.urandom(3 * 5 * MIB + 123_457)
    platform = tt.build(tiktok_app_audited=True)
    checkpoint = MemoryCheckpoint()
    result = await platform.upload(
        tt.token, MemorySource(data), _request("public"), checkpoint=checkpoint
    )
    publish = _only(tt)
    assert (publish.chunk_size, publish.chunk_count) == (5 * MIB, 3)  # floor(size / chunk)
    assert publish.chunk_puts == 3 and publish.wire_bytes == len(data)
    assert publish.sha256 == hashlib.sha256(data).hexdigest()
    assert checkpoint.saves == [0, 5 * MIB, 10 * MIB, len(data)]
    assert publish.privacy_level == "PUBLIC_TO_EVERYONE"
    assert result.post_id == publish.video_id and result.post_id.isdigit()
    assert result.url == f"https://www.tiktok.com/@studio.fern/video/{publish.video_id}"
    assert result.privacy == "public" and not result.privacy_forced
    assert len(tt.fake.posts_created) == 1


@pytest.mark.parametrize(
    ("word", "private_account", "level"),
    [
        ("public", False, "PUBLIC_TO_EVERYONE"),
        ("friends", False, "MUTUAL_FOLLOW_FRIENDS"),
        ("private", False, "SELF_ONLY"),
        ("followers", True, "FOLLOWER_OF_CREATOR"),
    ],
)
async def test_privacy_words_map_to_tiktok_levels(
    tt: TT, word: str, private_account: bool, level: str
) -> None:
    tt.creator.is_private = private_account
    platform = tt.build(tiktok_app_audited=True)
    result = await platform.upload(
        tt.token, MemorySource(b"v" * 1000), _request(word), checkpoint=MemoryCheckpoint()
    )
    assert tt.fake.calls_to(DIRECT_INIT)[0].body["post_info"]["privacy_level"] == level
    assert result.privacy == word


async def test_a_level_the_creator_does_not_offer_is_refused_before_init(tt: TT) -> None:
    platform = tt.build(tiktok_app_audited=True)
    with pytest.raises(InvalidRequest) as info:  # public accounts have no followers-only level
        await platform.upload(
            tt.token,
            MemorySource(b"v" * 1000),
            _request("followers"),
            checkpoint=MemoryCheckpoint(),
        )
    assert info.value.reason == "privacy_level_option_mismatch"
    assert "public, friends, private" in str(info.value)
    assert len(tt.fake.calls_to(CREATOR_INFO)) == 1 and not tt.fake.calls_to(DIRECT_INIT)


async def test_unaudited_apps_post_self_only_and_refuse_other_words_up_front(tt: TT) -> None:
    assert tt.platform.capabilities.privacy.values == ("private",)
    with pytest.raises(InvalidRequest):
        await tt.platform.upload(
            tt.token, MemorySource(b"v" * 1000), _request("public"), checkpoint=MemoryCheckpoint()
        )
    assert not tt.fake.calls
    tt.fake.unaudited = True
    tt.creator.is_private = True
    result = await tt.platform.upload(
        tt.token, MemorySource(b"v" * 1000), _request("private"), checkpoint=MemoryCheckpoint()
    )
    assert _only(tt).privacy_level == "SELF_ONLY" and result.privacy == "private"


async def test_unaudited_app_and_a_public_account_say_what_to_do(tt: TT) -> None:
    tt.fake.unaudited = True
    with pytest.raises(PermissionDenied) as info:
        await tt.platform.upload(
            tt.token, MemorySource(b"v" * 1000), _request(), checkpoint=MemoryCheckpoint()
        )
    assert info.value.reason == "unaudited_client_can_only_post_to_private_accounts"
    assert "Set the TikTok account to private" in str(info.value)


async def test_the_creators_own_interaction_settings_win(tt: TT) -> None:
    tt.creator.comment_disabled = True
    platform = tt.build(
        tiktok_allow_comments=True, tiktok_allow_duets=True, tiktok_allow_stitches=True
    )
    await platform.upload(
        tt.token, MemorySource(b"v" * 10), _request(), checkpoint=MemoryCheckpoint()
    )
    info = tt.fake.calls_to(DIRECT_INIT)[0].body["post_info"]
    assert info["disable_comment"] is True  # the creator said "no one"
    assert info["disable_duet"] is False and info["disable_stitch"] is False


async def test_status_is_polled_through_processing_until_complete(tt: TT) -> None:
    tt.fake.processing_polls = 4
    await tt.platform.upload(
        tt.token, MemorySource(b"v" * 5000), _request(), checkpoint=MemoryCheckpoint()
    )
    assert len(tt.fake.calls_to(STATUS)) == 5
    assert _only(tt).status == "PUBLISH_COMPLETE"


async def test_a_failed_post_is_explained_and_the_checkpoint_cleared(tt: TT) -> None:
    tt.fake.fail_processing("duration_check_failed")
    checkpoint = MemoryCheckpoint()
    with pytest.raises(InvalidRequest) as info:
        await tt.platform.upload(
            tt.token, MemorySource(b"v" * 500), _request(), checkpoint=checkpoint
        )
    assert "longer than this account may post" in str(info.value)
    assert checkpoint.session is None and checkpoint.confirmed == 0
    assert tt.fake.posts_created == []


async def test_a_slow_post_times_out_and_a_later_call_polls_on_without_sending_again(
    tt: TT,
) -> None:
    tt.fake.processing_polls = 10**6
    checkpoint = MemoryCheckpoint()
    slow = tt.build(tiktok_publish_timeout_seconds=0.2)
    with pytest.raises(PlatformUnavailable) as info:
        await slow.upload(tt.token, MemorySource(b"v" * 800), _request(), checkpoint=checkpoint)
    assert info.value.reason == "processing_timeout" and info.value.retryable
    assert "pick up where it left off" in str(info.value)
    assert checkpoint.session is not None and checkpoint.confirmed == 800
    _only(tt).processing_left = 0
    result = await tt.platform.upload(
        tt.token, MemorySource(b"v" * 800), _request(), checkpoint=checkpoint
    )
    assert result.post_id == _only(tt).id
    assert len(tt.fake.calls_to(DIRECT_INIT)) == 1 and len(tt.fake.calls_to(UPLOAD)) == 1


async def test_a_finished_checkpoint_is_not_posted_twice(tt: TT) -> None:
    checkpoint = MemoryCheckpoint()
    first = await tt.platform.upload(
        tt.token, MemorySource(b"v" * 100), _request(), checkpoint=checkpoint
    )
    again = await tt.platform.upload(
        tt.token, MemorySource(b"v" * 100), _request(), checkpoint=checkpoint
    )
    assert again == first
    assert len(tt.fake.publishes) == 1 and len(tt.fake.calls_to(UPLOAD)) == 1


async def test_a_dropped_connection_resumes_from_tiktoks_offset_in_the_same_call(tt: TT) -> None:
    data = os.urandom(3 * 5 * MIB + 999)
    tt.fake.drop_connection_at(5 * MIB + 2 * MIB)  # mid second chunk
    checkpoint = MemoryCheckpoint()
    source = MemorySource(data)
    result = await tt.platform.upload(tt.token, source, _request(), checkpoint=checkpoint)
    publish = _only(tt)
    assert publish.sha256 == hashlib.sha256(data).hexdigest()
    assert publish.chunk_puts == 4  # the cut chunk went again, whole
    assert source.opens == [0, 5 * MIB]  # reopened at TikTok's chunk boundary
    assert tt.fake.bytes_received == len(data) + 2 * MIB
    assert tt.fake.bytes_received < 1.5 * len(data)
    paths = [c.path for c in tt.fake.calls]
    # After the cut, TikTok is asked where it stands before anything is sent again.
    assert paths[:7] == [CREATOR_INFO, DIRECT_INIT, UPLOAD, UPLOAD, STATUS, UPLOAD, UPLOAD]
    assert tt.fake.calls_to(STATUS)[0].body == {"publish_id": publish.id}
    assert len(tt.fake.posts_created) == 1 and result.post_id == publish.id


def _interruptions(outcome: str) -> float:
    labels = {"platform": "tiktok", "outcome": outcome}
    return REGISTRY.get_sample_value("socialops_upload_interruptions_total", labels) or 0.0


async def test_a_5xx_on_a_chunk_is_resumed(tt: TT) -> None:
    data = os.urandom(2 * 5 * MIB + 10)
    tt.fake.fail_chunk(2, 503)
    resumed = _interruptions("resumed")
    await tt.platform.upload(
        tt.token, MemorySource(data), _request(), checkpoint=MemoryCheckpoint()
    )
    publish = _only(tt)
    assert publish.sha256 == hashlib.sha256(data).hexdigest()
    assert publish.chunk_puts == 3 and publish.status == "PUBLISH_COMPLETE"
    assert _interruptions("resumed") == resumed + 1  # the same series as YouTube's


async def test_a_restart_resumes_from_the_checkpoint_and_tiktoks_offset(tt: TT) -> None:
    data = os.urandom(4 * 5 * MIB + 77)
    tt.fake.hold_at(2 * 5 * MIB + 1000)  # stall in the third chunk
    checkpoint = MemoryCheckpoint()
    task = asyncio.create_task(
        tt.platform.upload(tt.token, MemorySource(data), _request(), checkpoint=checkpoint)
    )
    await asyncio.wait_for(tt.fake.held.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checkpoint.confirmed == 2 * 5 * MIB
    saved = decode_session(checkpoint.session)
    assert saved is not None and saved.publish_id == _only(tt).id
    assert "upload_token" not in repr(saved)
    # A new process: a new client, the same checkpoint.
    source = MemorySource(data)
    restarted = tt.build()
    result = await restarted.upload(tt.token, source, _request(), checkpoint=checkpoint)
    publish = _only(tt)
    assert publish.sha256 == hashlib.sha256(data).hexdigest()
    assert source.opens == [2 * 5 * MIB]
    assert len(tt.fake.calls_to(DIRECT_INIT)) == 1 and len(tt.fake.posts_created) == 1
    assert tt.fake.bytes_received < 1.5 * len(data)
    assert result.post_id == publish.id


async def test_tiktoks_offset_wins_over_a_checkpoint_that_lags_behind(tt: TT) -> None:
    data = os.urandom(3 * 5 * MIB + 5)
    tt.fake.hold_at(2 * 5 * MIB + 10)
    checkpoint = LosingCheckpoint(keep=2)  # the session and the first chunk only
    task = asyncio.create_task(
        tt.platform.upload(tt.token, MemorySource(data), _request(), checkpoint=checkpoint)
    )
    await asyncio.wait_for(tt.fake.held.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checkpoint.confirmed == 5 * MIB and _only(tt).received == 2 * 5 * MIB
    source = MemorySource(data)
    checkpoint.keep = 10**6
    await tt.build().upload(tt.token, source, _request(), checkpoint=checkpoint)
    assert source.opens == [2 * 5 * MIB]  # the second chunk was not sent again
    assert _only(tt).sha256 == hashlib.sha256(data).hexdigest()


async def test_a_lapsed_upload_url_starts_a_new_post_and_only_one_is_made(tt: TT) -> None:
    data = os.urandom(2 * 5 * MIB + 3)
    tt.fake.hold_at(5 * MIB + 10)
    checkpoint = MemoryCheckpoint()
    task = asyncio.create_task(
        tt.platform.upload(tt.token, MemorySource(data), _request(), checkpoint=checkpoint)
    )
    await asyncio.wait_for(tt.fake.held.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = decode_session(checkpoint.session)
    assert saved is not None
    # Two hours later: TikTok's upload URL lasts one hour.
    checkpoint.session = encode_session(dataclasses.replace(saved, issued_at=time.time() - 7200))
    await tt.build().upload(tt.token, MemorySource(data), _request(), checkpoint=checkpoint)
    assert len(tt.fake.calls_to(DIRECT_INIT)) == 2
    old, new = tt.fake.publishes.values()
    assert old.chunks_done == 1 and old.status == "PROCESSING_UPLOAD"
    assert new.sha256 == hashlib.sha256(data).hexdigest()
    assert tt.fake.posts_created == [new]


async def test_what_tiktok_would_refuse_is_refused_before_any_call(tt: TT) -> None:
    cases = [
        (MemorySource(b"v" * 10, mime_type="image/gif"), _request(), "MP4, MOV or WebM"),
        (MemorySource(b""), _request(), "empty"),
        # 1,100 emoji are 2,200 UTF-16 units; one more character tips it over.
        (MemorySource(b"v" * 10), _request(title="x" + "🎬" * 1100), "over 2200 characters"),
    ]
    for source, request, text in cases:
        with pytest.raises(InvalidRequest) as info:
            await tt.platform.upload(tt.token, source, request, checkpoint=MemoryCheckpoint())
        assert text in str(info.value)
    assert not tt.fake.calls


async def test_a_caption_of_exactly_2200_utf16_units_is_sent(tt: TT) -> None:
    await tt.platform.upload(
        tt.token,
        MemorySource(b"v" * 10),
        _request(title="🎬" * 1100),
        checkpoint=MemoryCheckpoint(),
    )
    assert tt.fake.calls_to(DIRECT_INIT)[0].body["post_info"]["title"] == "🎬" * 1100


class HostedSource(MemorySource):
    def __init__(self, data: bytes, public_url: str | None) -> None:
        super().__init__(data)
        self.public_url = public_url


async def test_pull_from_url_sends_the_public_address_and_no_bytes(tt: TT) -> None:
    platform = tt.build(tiktok_pull_from_url=True)
    assert platform.capabilities.media == "public_url"
    source = HostedSource(b"v" * 4096, "https://bot.example.com/media/abc123")
    result = await platform.upload(tt.token, source, _request(), checkpoint=MemoryCheckpoint())
    init = tt.fake.calls_to(DIRECT_INIT)[0].body
    assert init["source_info"] == {
        "source": "PULL_FROM_URL",
        "video_url": "https://bot.example.com/media/abc123",
    }
    assert not tt.fake.calls_to(UPLOAD) and source.opens == []
    assert [c.path for c in tt.fake.calls].count(STATUS) == 2  # PROCESSING_DOWNLOAD, then done
    assert result.post_id == _only(tt).id


async def test_pull_from_an_unverified_domain_is_explained(tt: TT) -> None:
    platform = tt.build(tiktok_pull_from_url=True)
    with pytest.raises(PermissionDenied) as info:
        await platform.upload(
            tt.token,
            HostedSource(b"v" * 10, "https://elsewhere.example/v.mp4"),
            _request(),
            checkpoint=MemoryCheckpoint(),
        )
    assert info.value.reason == "url_ownership_unverified"
    assert "TIKTOK_PULL_FROM_URL" in str(info.value)
    with pytest.raises(InvalidRequest) as missing:
        await platform.upload(
            tt.token, HostedSource(b"v" * 10, None), _request(), checkpoint=MemoryCheckpoint()
        )
    assert missing.value.reason == "needs_public_url"
