"""Turn Google API error responses into `integrations.errors`, with chat-safe messages.

Google answers errors as ``{"error": {"code": 403, "message": ..., "errors": [{"reason": ...}]}}``;
the machine-readable `reason` decides the type. Messages never echo the body or a URL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import httpx

from integrations.errors import (
    IntegrationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    PlatformUnavailable,
    QuotaExceeded,
    RateLimited,
    TokenExpired,
)

PLATFORM: Final = "youtube"
_PACIFIC = ZoneInfo("America/Los_Angeles")
UPLOAD_LIMIT_RETRY_SECONDS = 24 * 3600.0


def seconds_until_pacific_midnight(now: datetime | None = None) -> float:
    """YouTube's daily quota resets at midnight Pacific time."""
    local = (now or datetime.now(tz=_PACIFIC)).astimezone(_PACIFIC)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - local).total_seconds())


def google_reason(response: httpx.Response) -> str | None:
    """The first `errors[].reason` (or OAuth-style `error`) of an error body, if any."""
    try:
        body = response.json()
    except ValueError:
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


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_response(response: httpx.Response, *, doing: str) -> IntegrationError:
    """Map a non-success response to the error tree; `doing` names the step for the user."""
    status = response.status_code
    reason = google_reason(response)
    if reason in {"quotaExceeded", "dailyLimitExceeded"}:
        wait = seconds_until_pacific_midnight()
        return QuotaExceeded(
            f"YouTube's daily API quota for this app is used up while {doing}; "
            f"it resets at midnight Pacific time (in about {wait / 3600:.1f} h).",
            platform=PLATFORM,
            status=status,
            reason=reason,
            retry_after=wait,
        )
    if reason == "uploadLimitExceeded":
        return QuotaExceeded(
            "This channel has reached YouTube's upload limit; try again in 24 hours.",
            platform=PLATFORM,
            status=status,
            reason=reason,
            retry_after=UPLOAD_LIMIT_RETRY_SECONDS,
        )
    if status == 429 or reason in {"rateLimitExceeded", "userRateLimitExceeded"}:
        return RateLimited(
            f"YouTube asked us to slow down while {doing}; try again in a minute.",
            platform=PLATFORM,
            status=status,
            reason=reason,
            retry_after=_retry_after(response) or 60.0,
        )
    if status == 401:
        return TokenExpired(
            f"YouTube refused the access token while {doing}.",
            platform=PLATFORM,
            status=status,
            reason=reason,
        )
    if status == 403:
        return PermissionDenied(
            f"YouTube refused {doing} ({reason or 'forbidden'}): the linked account may lack "
            "permission, or the channel cannot do this yet.",
            platform=PLATFORM,
            status=status,
            reason=reason,
        )
    if status == 404:
        return NotFound(
            f"YouTube could not find what was asked for while {doing}.",
            platform=PLATFORM,
            status=status,
            reason=reason,
        )
    if status >= 500:
        return PlatformUnavailable(
            f"YouTube is having trouble ({status}) while {doing}; try again later.",
            platform=PLATFORM,
            status=status,
            reason=reason,
            retry_after=_retry_after(response),
        )
    return InvalidRequest(
        f"YouTube rejected the request while {doing} ({reason or status}).",
        platform=PLATFORM,
        status=status,
        reason=reason,
    )


def unavailable(exc: Exception, *, doing: str) -> PlatformUnavailable:
    """A network failure (no response at all)."""
    return PlatformUnavailable(
        f"Could not reach YouTube while {doing} ({type(exc).__name__}); try again later.",
        platform=PLATFORM,
    )
