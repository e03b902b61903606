"""X's error answers turned into `integrations.errors`, with chat-safe messages.

API v2 answers errors as problem details (RFC 7807): ``{"title", "detail", "type",
"status"}``, sometimes with an ``errors`` list; the last segment of ``type``
(``.../problems/usage-capped``) is the machine-readable reason. The OAuth endpoints
answer ``{"error", "error_description"}`` instead. Rate limits come in headers:
``x-rate-limit-reset`` (Unix seconds) for the endpoint window, and on a post refused
for the 24-hour caps ``x-user-limit-24hour-*`` / ``x-app-limit-24hour-*``.

Messages are ours: X's own `detail` goes to the log (shortened), never to the chat,
and neither does a body, a token or a URL.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Final

import httpx

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
    format_wait,
)

log = logging.getLogger(__name__)

PLATFORM: Final = "x"
DEFAULT_RATE_LIMIT_WAIT = 60.0
_SLUG = re.compile(r"[^a-z0-9_-]+")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def problem_reason(body: Any) -> str | None:
    """The reason slug of a problem-details body (`type`'s last segment, else `title`)."""
    if not isinstance(body, dict):
        return None
    kind = body.get("type")
    if isinstance(kind, str) and kind and kind != "about:blank":
        return _SLUG.sub("-", kind.rstrip("/").rsplit("/", 1)[-1].lower()) or None
    title = body.get("title")
    if isinstance(title, str) and title:
        return _SLUG.sub("-", title.lower()).strip("-") or None
    return None


def seconds_until(reset: str | None, *, now: float) -> float | None:
    """Seconds from `now` until a Unix-seconds reset header; None if absent or unreadable."""
    if reset is None:
        return None
    try:
        return max(float(reset) - now, 0.0)
    except ValueError:
        return None


def _is_duplicate(body: Any) -> bool:
    detail = body.get("detail") if isinstance(body, dict) else None
    return isinstance(detail, str) and "duplicate" in detail.lower()


def error_from_response(response: httpx.Response, *, doing: str, now: float) -> IntegrationError:
    """Map a failed API v2 response to the error tree; `doing` names the step for the user."""
    status = response.status_code
    body = _json(response)
    reason = problem_reason(body)
    detail = body.get("detail") if isinstance(body, dict) else None
    log.warning(
        "x error",
        extra={
            "status": status,
            "reason": reason,
            "doing": doing,
            "x_detail": str(detail or "")[:200],
        },
    )
    kw: dict[str, Any] = {"platform": PLATFORM, "status": status, "reason": reason}
    if status == 429:
        headers = response.headers
        for scope, who in (("user", "this account"), ("app", "this app")):
            if headers.get(f"x-{scope}-limit-24hour-remaining") == "0":
                wait = seconds_until(headers.get(f"x-{scope}-limit-24hour-reset"), now=now)
                kw["reason"] = f"{scope}_24h_post_cap"
                return QuotaExceeded(
                    f"X's 24-hour posting limit for {who} is used up; it frees up in about "
                    f"{format_wait(wait or 24 * 3600.0)}.",
                    retry_after=wait,
                    **kw,
                )
        wait = seconds_until(headers.get("x-rate-limit-reset"), now=now)
        wait = DEFAULT_RATE_LIMIT_WAIT if wait is None else max(wait, 1.0)
        return RateLimited(
            f"X is rate limiting us while {doing}; try again in about {format_wait(wait)}.",
            retry_after=wait,
            **kw,
        )
    if reason == "usage-capped":
        return QuotaExceeded(
            f"This app's X API usage cap is reached (while {doing}); it resets with the "
            "billing period.",
            **kw,
        )
    if status == 401:
        return TokenExpired(f"X refused the access token while {doing}.", **kw)
    if status == 403:
        if _is_duplicate(body):
            kw["reason"] = "duplicate_content"
            return PermissionDenied(
                "X refused the post: the same text was already posted from this account. "
                "Change the text and try again.",
                **kw,
            )
        return PermissionDenied(
            f"X refused {doing}: the linked account or this app is not allowed to do that "
            f"({reason or 'forbidden'}).",
            **kw,
        )
    if status == 404:
        return NotFound(f"X could not find what was asked for while {doing}.", **kw)
    if status == 408 or status >= 500:
        return PlatformUnavailable(
            f"X is having trouble ({status}) while {doing}; try again shortly.", **kw
        )
    return InvalidRequest(f"X refused the request as invalid while {doing}.", **kw)


def oauth_error(
    response: httpx.Response, *, doing: str, refreshing: bool, now: float
) -> IntegrationError:
    """Map a failed answer of the token or revoke endpoint.

    A refused grant on refresh means the refresh token is spent (X's are single use)
    or revoked: link again. X answers that with ``invalid_request`` ("Value passed for
    the token was invalid"), other servers with RFC 6749's ``invalid_grant``; both
    mean the same here, since everything else in the request is ours and fixed.
    """
    status = response.status_code
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    reason = _SLUG.sub("_", error.lower()) if isinstance(error, str) else None
    log.warning("x oauth error", extra={"status": status, "reason": reason, "doing": doing})
    kw: dict[str, Any] = {"platform": PLATFORM, "status": status, "reason": reason}
    if status == 429 or status >= 500:
        return error_from_response(response, doing=doing, now=now)
    if reason in {"invalid_client", "unauthorized_client"} or status == 401:
        return AuthError(
            f"X refused this app's client credentials while {doing}; check X_CLIENT_ID "
            "and X_CLIENT_SECRET.",
            **kw,
        )
    if refreshing and reason in {"invalid_grant", "invalid_request"}:
        return NeedsRelink(
            "X no longer accepts this account's authorization; link the X account again.",
            **kw,
        )
    return InvalidRequest(
        f"X did not accept {doing} (the sign-in code may have expired or been used). "
        "Start linking again.",
        **kw,
    )


def unavailable(exc: Exception, *, doing: str) -> PlatformUnavailable:
    """A network failure (no response at all)."""
    return PlatformUnavailable(
        f"Could not reach X while {doing} ({type(exc).__name__}); try again shortly.",
        platform=PLATFORM,
        reason=type(exc).__name__,
    )
