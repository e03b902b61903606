"""X's problem details and OAuth errors mapped to typed errors with chat-safe messages."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

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
from integrations.x._errors import error_from_response, oauth_error
from tests.integrations.x.conftest import XEnv

NOW = 1_700_000_000.0
SECRET = "x-at-SECRETSECRET"


def _response(status: int, body: dict[str, object], **headers: str) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


def _problem(status: int, title: str, detail: str, kind: str = "about:blank") -> dict[str, object]:
    return {"title": title, "detail": detail, "type": kind, "status": status}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "reason"),
    [
        (401, _problem(401, "Unauthorized", "Unauthorized"), {}, TokenExpired, "unauthorized"),
        (
            403,
            _problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            ),
            {},
            PermissionDenied,
            "duplicate_content",
        ),
        (
            403,
            _problem(
                403,
                "Client Forbidden",
                "attached to a Project",
                "https://api.x.com/2/problems/client-forbidden",
            ),
            {},
            PermissionDenied,
            "client-forbidden",
        ),
        (
            403,
            _problem(403, "Usage Capped", "cap", "https://api.x.com/2/problems/usage-capped"),
            {},
            QuotaExceeded,
            "usage-capped",
        ),
        (
            400,
            _problem(
                400,
                "Invalid Request",
                "One or more parameters",
                "https://api.x.com/2/problems/invalid-request",
            ),
            {},
            InvalidRequest,
            "invalid-request",
        ),
        (404, _problem(404, "Not Found Error", "nope"), {}, NotFound, "not-found-error"),
        (
            503,
            _problem(503, "Service Unavailable", "busy"),
            {},
            PlatformUnavailable,
            "service-unavailable",
        ),
        (
            429,
            _problem(429, "Too Many Requests", "Too Many Requests"),
            {"x-rate-limit-reset": str(int(NOW + 90))},
            RateLimited,
            "too-many-requests",
        ),
        (
            429,
            _problem(429, "Too Many Requests", "Too Many Requests"),
            {"x-app-limit-24hour-remaining": "0", "x-app-limit-24hour-reset": str(int(NOW + 7200))},
            QuotaExceeded,
            "app_24h_post_cap",
        ),
    ],
)
def test_problem_details_map_to_typed_errors(
    status: int,
    body: dict[str, object],
    headers: dict[str, str],
    expected: type[IntegrationError],
    reason: str,
) -> None:
    body = {**body, "detail": f"{body['detail']} token={SECRET}"}
    error = error_from_response(_response(status, body, **headers), doing="posting", now=NOW)
    assert type(error) is expected
    assert error.platform == "x" and error.status == status and error.reason == reason
    assert SECRET not in str(error) and "{" not in str(error) and "token=" not in str(error)


def test_rate_limit_waits_come_from_the_reset_headers() -> None:
    limited = error_from_response(
        _response(429, {}, **{"x-rate-limit-reset": str(int(NOW + 90))}), doing="x", now=NOW
    )
    assert limited.retry_after == 90 and "2 min" in str(limited)
    capped = error_from_response(
        _response(
            429,
            {},
            **{
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": str(int(NOW + 7200)),
            },
        ),
        doing="posting",
        now=NOW,
    )
    assert isinstance(capped, QuotaExceeded) and capped.retry_after == 7200
    assert "this account" in str(capped)
    bare = error_from_response(_response(429, {}), doing="x", now=NOW)
    assert isinstance(bare, RateLimited) and bare.retry_after == 60


@pytest.mark.parametrize(
    ("status", "error", "refreshing", "expected"),
    [
        (400, "invalid_request", True, NeedsRelink),
        (400, "invalid_grant", True, NeedsRelink),
        (400, "invalid_request", False, InvalidRequest),
        (401, "unauthorized_client", True, AuthError),
        (401, "invalid_client", False, AuthError),
        (503, "temporarily_unavailable", True, PlatformUnavailable),
    ],
)
def test_oauth_errors(
    status: int, error: str, refreshing: bool, expected: type[IntegrationError]
) -> None:
    response = _response(status, {"error": error, "error_description": f"bad {SECRET}"})
    mapped = oauth_error(response, doing="renewing", refreshing=refreshing, now=NOW)
    assert type(mapped) is expected and SECRET not in str(mapped)


async def test_a_5xx_from_x_is_platform_unavailable_and_logs_no_token(
    x: XEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    x.fake.fail_next("GET /2/users/me", 503)
    platform = x.make()
    with pytest.raises(PlatformUnavailable) as info:
        await platform.profile(x.token)
    assert info.value.retryable and info.value.status == 503
    assert x.token.access_token not in caplog.text and x.token.access_token not in str(info.value)
    assert x.fake.client_secret not in repr(platform) and x.fake.client_secret not in repr(
        platform._config
    )


async def test_an_unreachable_x_is_platform_unavailable(x: XEnv) -> None:
    platform = x.make(x_api_base="http://127.0.0.1:9")
    with pytest.raises(PlatformUnavailable) as info:
        await platform.profile(x.token)
    assert "127.0.0.1" not in str(info.value)
