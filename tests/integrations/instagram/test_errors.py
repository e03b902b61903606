"""Graph errors -> typed errors with chat-safe messages; no token in messages, reprs or logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.logs import RedactingFilter
from integrations.base import TokenSet, UploadRequest
from integrations.errors import (
    IntegrationError,
    InvalidRequest,
    NeedsRelink,
    NotFound,
    PermissionDenied,
    PlatformUnavailable,
    QuotaExceeded,
    RateLimited,
)
from integrations.instagram.graph import map_graph_error
from tests.integrations.instagram.conftest import (
    IG,
    REDIRECT,
    TEST_RETRY,
    MemoryCheckpoint,
    MemorySource,
)


@pytest.mark.parametrize(
    ("status", "code", "subcode", "expected"),
    [
        (400, 4, None, RateLimited),
        (400, 17, None, RateLimited),
        (400, 32, None, RateLimited),
        (400, 613, None, RateLimited),
        (429, None, None, RateLimited),
        (400, 9, 2207042, QuotaExceeded),
        (400, 190, 463, NeedsRelink),
        (400, 190, None, NeedsRelink),
        (400, 10, None, PermissionDenied),
        (400, 200, None, PermissionDenied),
        (400, 100, None, InvalidRequest),
        (400, 100, 33, NotFound),
        (500, 1, None, PlatformUnavailable),
        (503, None, None, PlatformUnavailable),
        (400, 2, None, PlatformUnavailable),
    ],
)
def test_graph_codes_map_to_typed_errors(
    status: int, code: int | None, subcode: int | None, expected: type[IntegrationError]
) -> None:
    error = map_graph_error(status=status, code=code, subcode=subcode)
    assert type(error) is expected
    assert error.platform == "instagram" and error.status == status
    assert str(error) and "{" not in str(error)  # our sentence, never a body


async def test_rate_limit_carries_the_retry_hint(ig: IG) -> None:
    ig.fake.rate_limit(minutes=7)
    with pytest.raises(RateLimited) as info:
        await ig.platform.profile(ig.token)
    assert info.value.retry_after == 7 * 60
    assert info.value.retryable
    assert "about 7 min" in str(info.value)
    assert len(ig.fake.calls_to("GET", "me")) == 1  # a rate limit is not hammered


async def test_a_500_once_on_a_read_is_retried(ig: IG) -> None:
    ig.fake.fail_with_500(times=1, path="me")
    profile = await ig.platform.profile(ig.token)
    assert profile.handle == "studio.fern"
    assert len(ig.fake.calls_to("GET", "me")) == 2


async def test_repeated_500s_surface_as_platform_unavailable(ig: IG) -> None:
    ig.fake.fail_with_500(times=100, path="me")
    with pytest.raises(PlatformUnavailable) as info:
        await ig.platform.profile(ig.token)
    assert info.value.retryable and info.value.status == 500
    # Retried by the shared transport alone: one policy's worth of requests in total...
    assert len(ig.fake.calls_to("GET", "me")) == TEST_RETRY.max_attempts
    # ...and one failed call moves the breaker by one, however many requests it took.
    assert ig.guards.guard("instagram").breaker.failures == 1
    with pytest.raises(PlatformUnavailable):
        await ig.platform.profile(ig.token)
    assert len(ig.fake.calls_to("GET", "me")) == 2 * TEST_RETRY.max_attempts
    assert ig.guards.guard("instagram").breaker.failures == 2
    assert (
        ig.guards.guard("instagram").breaker.state == "closed"
    )  # threshold 5: calls, not requests


async def test_a_500_on_a_post_is_sent_once(ig: IG) -> None:
    ig.fake.fail_with_500(times=100, path="me/media")
    with pytest.raises(PlatformUnavailable):
        await ig.platform.upload(
            ig.token,
            MemorySource(),
            UploadRequest(title="t", privacy="public"),
            checkpoint=MemoryCheckpoint(),
        )
    assert len(ig.fake.calls_to("POST", "me/media")) == 1  # creating twice is worse
    assert ig.guards.guard("instagram").breaker.failures == 1


async def test_an_expired_token_on_a_read_needs_relink(ig: IG) -> None:
    ig.fake.expire(ig.token.access_token)
    with pytest.raises(NeedsRelink) as info:
        await ig.platform.post_metrics(ig.token, ["1"])
    assert "Link the Instagram account again" in str(info.value)


async def test_network_failure_is_platform_unavailable(ig: IG) -> None:
    ig.platform._graph._base = "http://127.0.0.1:9"  # nothing listens on the discard port
    with pytest.raises(PlatformUnavailable) as info:
        await ig.platform.profile(ig.token)
    assert type(info.value) is PlatformUnavailable  # a GET is replayable: not ConnectionLost
    assert info.value.reason == "ConnectError"
    assert ig.guards.guard("instagram").breaker.failures == 1


async def test_no_token_or_secret_in_errors_reprs_or_logs(
    ig: IG, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_ = [ig.token.access_token, ig.fake.client_secret]
    errors: list[BaseException] = []

    code = ig.fake.issue_code(ig.user, REDIRECT)
    linked = await ig.platform.exchange_code(code=code, code_verifier="x", redirect_uri=REDIRECT)
    secrets_ += [linked.access_token, code]
    refreshed = await ig.platform.refresh(linked)
    secrets_.append(refreshed.access_token)
    ig.fake.rate_limit()
    ig.fake.expire(refreshed.access_token)
    for attempt in (
        ig.platform.profile(ig.token),
        ig.platform.refresh(refreshed),
        ig.platform.exchange_code(code=code, code_verifier="x", redirect_uri=REDIRECT),
        ig.platform.upload(
            ig.token,
            MemorySource(public_url=None),
            UploadRequest(title="t", privacy="public"),
            checkpoint=MemoryCheckpoint(),
        ),
    ):
        with pytest.raises(IntegrationError) as info:
            await attempt
        errors.append(info.value)

    for text in [repr(ig.platform), repr(linked), repr(refreshed)] + [
        f"{e!s} {e!r} {getattr(e, 'user_message', '')}" for e in errors
    ]:
        for secret in secrets_:
            assert secret not in text

    ours = [r for r in caplog.records if r.name.startswith("integrations")]
    assert ours, "the integration logged nothing to check"
    for record in ours:
        rendered = f"{record.getMessage()} {record.__dict__}"
        for secret in secrets_:
            assert secret not in rendered
    # Library records (httpx logs request URLs) go through the production redaction filter.
    # (The exchange and refresh endpoints take the token in the query string, as documented,
    # so httpx's request lines do carry it before redaction: the check below is not vacuous.)
    assert any(s in r.getMessage() for r in caplog.records for s in secrets_)
    redactor = RedactingFilter([ig.fake.client_secret])
    for record in caplog.records:
        redactor.filter(record)
        for secret in secrets_:
            assert secret not in record.getMessage()


async def test_token_expiring_soon_still_refreshes(ig: IG) -> None:
    token = TokenSet(
        access_token=ig.token.access_token, expires_at=datetime.now(UTC) + timedelta(minutes=5)
    )
    assert (await ig.platform.refresh(token)).access_token != token.access_token
