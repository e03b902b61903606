"""Inbox drafts: the inbox mode, and the fallback when TikTok refuses a direct post."""

from __future__ import annotations

import os

import pytest

from integrations.base import UploadRequest
from integrations.errors import PermissionDenied, QuotaExceeded
from integrations.tiktok.plugin import FALLBACK_NOTE, INBOX_NOTE
from tests.fakes.google import MemoryCheckpoint, MemorySource
from tests.fakes.tiktok import CREATOR_INFO, DIRECT_INIT, INBOX_INIT, STATUS, UPLOAD
from tests.integrations.tiktok.conftest import MIB, TT


async def test_inbox_mode_sends_a_draft_with_source_info_only(tt: TT) -> None:
    platform = tt.build(tiktok_post_mode="inbox")
    caps = platform.capabilities
    assert caps.privacy.values == ("private",) and caps.posting_note == INBOX_NOTE
    assert caps.quota.cost("upload") == {"inits": 1, "drafts": 1}
    data = os.urandom(6 * MIB)
    result = await platform.upload(
        tt.token,
        MemorySource(data),
        UploadRequest(title="Draft", privacy="private"),
        checkpoint=MemoryCheckpoint(),
    )
    assert not tt.fake.calls_to(CREATOR_INFO) and not tt.fake.calls_to(DIRECT_INIT)
    body = tt.fake.calls_to(INBOX_INIT)[0].body
    assert set(body) == {"source_info"}  # a draft carries no caption
    assert body["source_info"]["total_chunk_count"] == 1  # 6 MiB: one 6 MiB chunk (floor)
    (draft,) = tt.fake.posts_created
    assert draft.status == "SEND_TO_USER_INBOX" and draft.mode == "inbox"
    assert result.post_id == draft.id and result.url is None
    assert result.privacy == "private" and not result.privacy_forced
    assert len(tt.fake.calls_to(UPLOAD)) == 1


async def test_without_fallback_an_unaudited_refusal_stays_an_error(tt: TT) -> None:
    tt.fake.unaudited = True
    with pytest.raises(PermissionDenied):
        await tt.build(tiktok_app_audited=True).upload(
            tt.token,
            MemorySource(b"v" * 100),
            UploadRequest(title="t", privacy="public"),
            checkpoint=MemoryCheckpoint(),
        )
    assert not tt.fake.calls_to(INBOX_INIT)


@pytest.mark.parametrize(
    "code",
    [
        "unaudited_client_can_only_post_to_private_accounts",
        "reached_active_user_cap",
        "scope_not_authorized",
    ],
)
async def test_a_refused_direct_post_falls_back_to_a_draft(tt: TT, code: str) -> None:
    platform = tt.build(tiktok_app_audited=True, tiktok_inbox_fallback=True)
    assert platform.capabilities.posting_note == FALLBACK_NOTE
    tt.fake.fail_next(DIRECT_INIT, code)
    checkpoint = MemoryCheckpoint()
    result = await platform.upload(
        tt.token,
        MemorySource(b"v" * 2000),
        UploadRequest(title="t", privacy="public"),
        checkpoint=checkpoint,
    )
    assert len(tt.fake.calls_to(DIRECT_INIT)) == 1 and len(tt.fake.calls_to(INBOX_INIT)) == 1
    (draft,) = tt.fake.posts_created
    assert draft.mode == "inbox" and result.post_id == draft.id
    # The draft is private until the creator posts it: the result says so.
    assert result.privacy == "private" and result.privacy_forced
    assert checkpoint.session is not None and "inbox" in checkpoint.session


async def test_other_refusals_do_not_fall_back(tt: TT) -> None:
    platform = tt.build(tiktok_inbox_fallback=True)
    tt.fake.fail_next(DIRECT_INIT, "spam_risk_too_many_posts")
    with pytest.raises(QuotaExceeded):
        await platform.upload(
            tt.token,
            MemorySource(b"v" * 10),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        )
    assert not tt.fake.calls_to(INBOX_INIT)


async def test_a_token_without_video_publish_goes_straight_to_the_inbox(tt: TT) -> None:
    platform = tt.build(tiktok_inbox_fallback=True)
    token = tt.token_with(("user.info.basic", "video.list", "video.upload"))
    await platform.upload(
        token,
        MemorySource(b"v" * 10),
        UploadRequest(title="t", privacy="private"),
        checkpoint=MemoryCheckpoint(),
    )
    assert not tt.fake.calls_to(CREATOR_INFO) and not tt.fake.calls_to(DIRECT_INIT)
    assert len(tt.fake.posts_created) == 1


async def test_a_missing_publish_scope_without_the_upload_scope_is_not_a_fallback(tt: TT) -> None:
    platform = tt.build(tiktok_inbox_fallback=True)
    token = tt.token_with(("user.info.basic", "video.list"))
    with pytest.raises(PermissionDenied) as info:
        await platform.upload(
            token,
            MemorySource(b"v" * 10),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        )
    assert info.value.reason == "scope_not_authorized" and "Link the TikTok account again" in str(
        info.value
    )
    assert not tt.fake.calls_to(INBOX_INIT)


async def test_five_pending_drafts_a_day_is_the_limit(tt: TT) -> None:
    platform = tt.build(tiktok_post_mode="inbox")
    for _ in range(5):
        await platform.upload(
            tt.token,
            MemorySource(b"v" * 10),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        )
    with pytest.raises(QuotaExceeded) as info:
        await platform.upload(
            tt.token,
            MemorySource(b"v" * 10),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        )
    assert info.value.reason == "spam_risk_too_many_pending_share"
    assert "5 drafts" in str(info.value)
    assert len(tt.fake.calls_to(STATUS)) >= 5
