"""TikTok error codes -> typed errors with chat-safe messages; never a secret in sight."""

from __future__ import annotations

import hashlib
import logging
import os

import httpx
import pytest

from bot.logs import RedactingFilter
from integrations.base import TokenSet, UploadRequest
from integrations.errors import (
    AuthError,
    IntegrationError,
    InvalidRequest,
    NeedsRelink,
    NotFound,
    PermissionDenied,
    PlatformUnavailable,
    QuotaExceeded,
    RateLimited,
    TokenExpired,
)
from integrations.http import Guards, RetryPolicy, make_client
from integrations.tiktok._errors import REASONS, envelope, map_error
from integrations.tiktok.api import TikTokApi
from integrations.tiktok.plugin import PLUGIN
from tests.fakes.google import MemoryCheckpoint, MemorySource
from tests.fakes.platforms import build
from tests.fakes.tiktok import (
    CREATOR_INFO,
    DIRECT_INIT,
    STATUS,
    STATUS_OF,
    USER_INFO,
    VIDEO_QUERY,
    tiktok_settings,
)
from tests.integrations.tiktok.conftest import MIB, REDIRECT, TT

EXPECTED: dict[str, type[IntegrationError]] = {
    "access_token_invalid": TokenExpired,
    "auth_removed": NeedsRelink,
    "invalid_grant": NeedsRelink,
    "invalid_client": AuthError,
    "invalid_request": InvalidRequest,
    "scope_not_authorized": PermissionDenied,
    "scope_permission_missed": PermissionDenied,
    "rate_limit_exceeded": RateLimited,
    "spam_risk_too_many_posts": QuotaExceeded,
    "spam_risk_too_many_pending_share": QuotaExceeded,
    "reached_active_user_cap": QuotaExceeded,
    "spam_risk_user_banned_from_posting": PermissionDenied,
    "spam_risk": PermissionDenied,
    "unaudited_client_can_only_post_to_private_accounts": PermissionDenied,
    "url_ownership_unverified": PermissionDenied,
    "spam_risk_text": InvalidRequest,
    "privacy_level_option_mismatch": InvalidRequest,
    "invalid_param": InvalidRequest,
    "invalid_params": InvalidRequest,
    "invalid_file_upload": InvalidRequest,
    "file_format_check_failed": InvalidRequest,
    "duration_check_failed": InvalidRequest,
    "frame_rate_check_failed": InvalidRequest,
    "picture_size_check_failed": InvalidRequest,
    "publish_cancelled": InvalidRequest,
    "video_pull_failed": PlatformUnavailable,
    "internal_error": PlatformUnavailable,
    "internal": PlatformUnavailable,
}


def test_the_reason_table_is_complete_and_mapped_as_documented() -> None:
    assert set(REASONS) == set(EXPECTED)
    for code, kind in EXPECTED.items():
        error = map_error(code, status=200, doing="posting")
        assert type(error) is kind, code
        assert error.platform == "tiktok" and error.reason == code
        assert str(error) and "{" not in str(error)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, TokenExpired),
        (403, PermissionDenied),
        (404, NotFound),
        (429, RateLimited),
        (500, PlatformUnavailable),
        (400, InvalidRequest),
    ],
)
def test_unknown_codes_fall_back_to_the_http_status(status: int, kind: type) -> None:
    error = map_error("something_new", status=status, doing="posting")
    assert type(error) is kind and "{" not in str(error)


def test_envelopes_of_both_shapes() -> None:
    api = {"data": {}, "error": {"code": "ok", "message": "", "log_id": "L1"}}
    assert envelope(api) == ("ok", "", "L1")
    flat = {"error": "invalid_grant", "error_description": "expired", "log_id": "L2"}
    assert envelope(flat) == ("invalid_grant", "expired", "L2")
    assert envelope([1]) == (None, "", "") and envelope({"data": {}}) == (None, "", "")


@pytest.mark.parametrize("in_200", [False, True])
@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("spam_risk_too_many_posts", QuotaExceeded),
        ("spam_risk_user_banned_from_posting", PermissionDenied),
        ("reached_active_user_cap", QuotaExceeded),
        ("invalid_param", InvalidRequest),
        ("scope_not_authorized", PermissionDenied),
        ("rate_limit_exceeded", RateLimited),
        ("internal_error", PlatformUnavailable),
    ],
)
async def test_init_errors_map_with_or_without_an_error_status(
    tt: TT, code: str, kind: type[IntegrationError], in_200: bool
) -> None:
    tt.fake.errors_in_200 = in_200
    tt.fake.fail_next(DIRECT_INIT, code)
    checkpoint = MemoryCheckpoint()
    with pytest.raises(kind) as info:
        await tt.platform.upload(
            tt.token,
            MemorySource(b"v" * 100),
            UploadRequest(title="t", privacy="private"),
            checkpoint=checkpoint,
        )
    assert info.value.reason == code
    assert info.value.status == (200 if in_200 else STATUS_OF[code])
    assert checkpoint.session is None  # nothing was started
    assert tt.fake.posts_created == []


async def test_spam_and_quota_messages_are_clear(tt: TT) -> None:
    tt.fake.fail_next(DIRECT_INIT, "spam_risk_too_many_posts")
    with pytest.raises(QuotaExceeded) as posts:
        await tt.platform.upload(
            tt.token,
            MemorySource(b"v"),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        )
    assert "limit of posts made through apps in 24 hours" in str(posts.value)
    tt.fake.fail_next(CREATOR_INFO, "spam_risk_user_banned_from_posting")
    with pytest.raises(PermissionDenied) as banned:
        await tt.platform.upload(
            tt.token,
            MemorySource(b"v"),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        )
    assert "blocked this account from making new posts" in str(banned.value)


@pytest.mark.parametrize("body", [b"", b"<html>busy</html>", b"[1, 2]"])
async def test_an_unreadable_api_answer_is_platform_unavailable(body: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    async with httpx.AsyncClient(transport=transport) as http:
        api = TikTokApi(http, api_base="https://open.tiktokapis.example")
        with pytest.raises(PlatformUnavailable) as info:
            await api.call("GET", "/v2/user/info/", token="t", doing="reading", idempotent=True)
    assert info.value.reason == "bad_response"


async def test_an_expired_access_token_is_token_expired(tt: TT) -> None:
    tt.fake.expire_access_tokens()
    with pytest.raises(TokenExpired) as info:
        await tt.platform.profile(tt.token)
    assert info.value.reason == "access_token_invalid" and info.value.status == 401
    assert info.value.retryable


async def test_a_429_carries_tiktoks_wait(tt: TT) -> None:
    tt.fake.rate_limit(USER_INFO, retry_after=42)
    with pytest.raises(RateLimited) as info:
        await tt.platform.profile(tt.token)
    assert info.value.retry_after == 42 and info.value.status == 429
    assert "42 s" in str(info.value)
    tt.fake.rate_limit(VIDEO_QUERY)
    with pytest.raises(RateLimited) as default:
        await tt.platform.post_metrics(tt.token, ["123"])
    assert default.value.retry_after == 60


async def test_rate_limited_status_reads_are_waited_out_while_polling(tt: TT) -> None:
    tt.fake.rate_limit(STATUS, times=2, retry_after=0)
    result = await tt.platform.upload(
        tt.token,
        MemorySource(b"v" * 10),
        UploadRequest(title="t", privacy="private"),
        checkpoint=MemoryCheckpoint(),
    )
    assert result.post_id and len(tt.fake.calls_to(STATUS)) >= 3


async def test_network_failure_is_platform_unavailable(tt: TT) -> None:
    platform = tt.build(tiktok_api_base="http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(PlatformUnavailable) as info:
        await platform.profile(tt.token)
    assert info.value.retryable and "Could not reach TikTok" in str(info.value)


async def test_the_production_client_resumes_a_cut_chunk(tt: TT) -> None:
    """Through make_client's ResilientTransport a cut streamed PUT is PlatformUnavailable
    (a streamed body is never replayed there): the upload still resumes from TikTok's offset."""
    guards = Guards(retry=RetryPolicy(base_delay=0.001, max_delay=0.01))
    async with make_client(platform="tiktok", guards=guards, timeout=30) as http:
        platform = build(PLUGIN, http, **tiktok_settings(tt.base, tt.fake))
        data = os.urandom(2 * 5 * MIB + 11)
        tt.fake.drop_connection_at(5 * MIB + 100)
        await platform.upload(
            tt.token,
            MemorySource(data),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        )
    (post,) = tt.fake.posts_created
    assert post.sha256 == hashlib.sha256(data).hexdigest()
    assert tt.fake.bytes_received == len(data) + 100


async def test_no_token_or_secret_in_errors_reprs_or_logs(
    tt: TT, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_ = [tt.token.access_token, str(tt.token.refresh_token), tt.fake.client_secret]
    url = tt.platform.authorization_url(state="s", code_verifier="v", redirect_uri=REDIRECT)
    async with httpx.AsyncClient() as browser:
        code = httpx.URL((await browser.get(url)).headers["location"]).params["code"]
    linked = await tt.platform.exchange_code(code=code, code_verifier="v", redirect_uri=REDIRECT)
    secrets_ += [linked.access_token, str(linked.refresh_token), code]
    errors: list[BaseException] = []
    tt.fake.drop_connection_at(5 * MIB + 10)
    upload = await tt.platform.upload(
        linked,
        MemorySource(os.urandom(2 * 5 * MIB)),
        UploadRequest(title="t", privacy="private"),
        checkpoint=(checkpoint := MemoryCheckpoint()),
    )
    assert checkpoint.session is not None
    upload_token = httpx.URL(checkpoint.session.split('"upload_url":"')[1].split('"')[0]).params[
        "upload_token"
    ]
    secrets_.append(upload_token)
    tt.fake.fail_next(DIRECT_INIT, "spam_risk_too_many_posts")
    tt.fake.expire_access_tokens()
    for attempt in (
        tt.platform.profile(linked),
        tt.platform.refresh(TokenSet(access_token="act.x", refresh_token="rft.unknown")),
        tt.platform.upload(
            tt.token,
            MemorySource(b"v"),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        ),
    ):
        with pytest.raises(IntegrationError) as info:
            await attempt
        errors.append(info.value)
    texts = [repr(tt.platform), repr(tt.platform.publisher), repr(linked), repr(upload)]
    texts += [f"{e!s} {e!r}" for e in errors]
    for text in texts:
        for secret in secrets_:
            assert secret not in text
    ours = [r for r in caplog.records if r.name.startswith("integrations")]
    assert any("tiktok error" in r.getMessage() for r in ours)
    for record in ours:
        rendered = f"{record.getMessage()} {record.__dict__}"
        for secret in secrets_:
            assert secret not in rendered
    # httpx logs request lines (the upload URL carries its token): production redacts them.
    redactor = RedactingFilter([tt.fake.client_secret])
    for record in caplog.records:
        redactor.filter(record)
        assert tt.fake.client_secret not in record.getMessage()
