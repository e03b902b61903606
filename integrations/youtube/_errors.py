"""Google's error answers -> `integrations.errors`, with chat-safe messages.

The Data API answers errors as
``{"error": {"code": 403, "message": ..., "errors": [{"reason": ...}]}}`` and the OAuth
token endpoint as ``{"error": "invalid_grant", ...}``; the machine-readable reason
decides the type where it says more than the status (`REASONS`), the status otherwise.
Messages never echo the body or a URL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import httpx

from integrations.errors import (
    AuthError,
    ErrorMapper,
    IntegrationError,
    NeedsRelink,
    QuotaExceeded,
    RateLimited,
    ReasonRule,
)
from integrations.http import parse_retry_after

PLATFORM: Final = "youtube"
_PACIFIC = ZoneInfo("America/Los_Angeles")
UPLOAD_LIMIT_RETRY_SECONDS = 24 * 3600.0


def seconds_until_pacific_midnight(now: datetime | None = None) -> float:
    """YouTube's daily quota resets at midnight Pacific time."""
    local = (now or datetime.now(tz=_PACIFIC)).astimezone(_PACIFIC)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - local).total_seconds())


_DAILY_QUOTA = ReasonRule(
    QuotaExceeded,
    "{display}'s daily API quota for this app is used up; it resets at midnight Pacific "
    "time, in about {wait}.",
    default_wait=seconds_until_pacific_midnight,
)
_SLOW_DOWN = ReasonRule(
    RateLimited, "{display} asked us to slow down; try again in about {wait}.", default_wait=60.0
)
_BAD_CLIENT = ReasonRule(
    AuthError,
    "Google refused this bot's OAuth client; its Google client id and secret need checking.",
)

REASONS: Final = {
    "quotaExceeded": _DAILY_QUOTA,
    "dailyLimitExceeded": _DAILY_QUOTA,
    "uploadLimitExceeded": ReasonRule(
        QuotaExceeded,
        "This channel has reached {display}'s upload limit; try again in {wait}.",
        default_wait=UPLOAD_LIMIT_RETRY_SECONDS,
    ),
    "rateLimitExceeded": _SLOW_DOWN,
    "userRateLimitExceeded": _SLOW_DOWN,
    # OAuth token endpoint (RFC 6749 section 5.2).
    "invalid_grant": ReasonRule(
        NeedsRelink, "Google no longer accepts this account's authorization; link it again."
    ),
    "invalid_client": _BAD_CLIENT,
    "unauthorized_client": _BAD_CLIENT,
}

ERRORS: Final = ErrorMapper(platform=PLATFORM, display="YouTube", reasons=REASONS)


def google_reason(response: httpx.Response) -> str | None:
    """The first `errors[].reason` (or OAuth-style `error`) of an error body, if any."""
    try:
        body = response.json()
    except ValueError:  # not JSON (json.JSONDecodeError and UnicodeDecodeError included)
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        for item in error.get("errors") or []:
            if isinstance(item, dict) and item.get("reason"):
                return str(item["reason"])
        status = error.get("status")
        if isinstance(status, str):
            return status
    return None


def error_from_response(response: httpx.Response, *, doing: str) -> IntegrationError:
    """Map a non-success response to the error tree; `doing` names the step for the user."""
    return ERRORS(
        response.status_code,
        reason=google_reason(response),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        doing=doing,
    )
