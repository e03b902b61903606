"""TikTok's error answers turned into `integrations.errors`, with chat-safe messages.

The v2 API answers `{"data": ..., "error": {"code", "message", "log_id"}}` with code
"ok" on success; the OAuth endpoints answer a flat `{"error", "error_description",
"log_id"}`. An error may come with its documented HTTP status or with 200, so the
code decides first and the status only when the code is unknown. A post that fails
after it was accepted reports the same kind of code as `fail_reason`.

Reason table (code -> error):

    access_token_invalid                  TokenExpired (the caller refreshes once, then relinks)
    auth_removed                          NeedsRelink
    invalid_grant (OAuth refresh)         NeedsRelink
    invalid_client (OAuth)                AuthError (this server's app credentials)
    invalid_request (OAuth)               InvalidRequest (sign-in code expired or used)
    scope_not_authorized                  PermissionDenied, "link TikTok again"
    scope_permission_missed               PermissionDenied, "link TikTok again"
    rate_limit_exceeded                   RateLimited (Retry-After, else 60 s)
    spam_risk_too_many_posts              QuotaExceeded (posts per creator per 24 h)
    spam_risk_too_many_pending_share      QuotaExceeded (5 inbox drafts per 24 h)
    reached_active_user_cap               QuotaExceeded (creators per app per 24 h)
    spam_risk_user_banned_from_posting    PermissionDenied
    spam_risk                             PermissionDenied
    unaudited_client_can_only_post_to_private_accounts   PermissionDenied
    url_ownership_unverified              PermissionDenied (PULL_FROM_URL domain)
    spam_risk_text                        InvalidRequest
    privacy_level_option_mismatch         InvalidRequest
    invalid_param, invalid_params         InvalidRequest
    invalid_file_upload, file_format_check_failed, duration_check_failed,
    frame_rate_check_failed, picture_size_check_failed   InvalidRequest
    publish_cancelled                     InvalidRequest
    video_pull_failed                     PlatformUnavailable
    internal_error, internal              PlatformUnavailable
    anything else                         by HTTP status (401, 403, 404, 429, 5xx, else 400)

Messages are ours; TikTok's own message goes to the log only (with its log_id), and
no message carries a token or an upload URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
from integrations.http import parse_retry_after

log = logging.getLogger(__name__)

PLATFORM: Final = "tiktok"
DEFAULT_RATE_LIMIT_WAIT = 60.0

_RELINK = "Link the TikTok account again and allow every permission it asks for."
_FILE = "TikTok did not accept the video file"


@dataclass(frozen=True, slots=True)
class Reason:
    """The error type for one TikTok code and the sentence shown in chat."""

    kind: type[IntegrationError]
    message: str


REASONS: dict[str, Reason] = {
    "access_token_invalid": Reason(TokenExpired, "TikTok refused the access token while {doing}."),
    "auth_removed": Reason(
        NeedsRelink, "The creator removed this app's access in TikTok. " + _RELINK
    ),
    "invalid_grant": Reason(
        NeedsRelink, "TikTok no longer accepts this account's authorization. " + _RELINK
    ),
    "invalid_client": Reason(
        AuthError,
        "TikTok refused this server's app credentials (TIKTOK_CLIENT_KEY / "
        "TIKTOK_CLIENT_SECRET) while {doing}.",
    ),
    "invalid_request": Reason(
        InvalidRequest,
        "TikTok refused the sign-in (the code may have expired or been used already). "
        "Start linking again.",
    ),
    "scope_not_authorized": Reason(
        PermissionDenied, "The linked TikTok account did not allow {doing}. " + _RELINK
    ),
    "scope_permission_missed": Reason(
        PermissionDenied, "The linked TikTok account did not allow {doing}. " + _RELINK
    ),
    "rate_limit_exceeded": Reason(
        RateLimited, "TikTok asked us to slow down while {doing}; try again in about {wait}."
    ),
    "spam_risk_too_many_posts": Reason(
        QuotaExceeded,
        "This TikTok account has reached TikTok's limit of posts made through apps in "
        "24 hours; try again later.",
    ),
    "spam_risk_too_many_pending_share": Reason(
        QuotaExceeded,
        "This TikTok account already has 5 drafts from apps waiting in its inbox "
        "(TikTok's limit for 24 hours). Post or delete them in the TikTok app, then try again.",
    ),
    "reached_active_user_cap": Reason(
        QuotaExceeded,
        "This TikTok app has reached TikTok's limit of creators posting through it in "
        "24 hours; try again later.",
    ),
    "spam_risk_user_banned_from_posting": Reason(
        PermissionDenied,
        "TikTok has blocked this account from making new posts; check it in the TikTok app.",
    ),
    "spam_risk": Reason(PermissionDenied, "TikTok refused the post as a spam risk."),
    "unaudited_client_can_only_post_to_private_accounts": Reason(
        PermissionDenied,
        "This TikTok app is not audited yet, so TikTok takes its posts only from accounts "
        "set to private. Set the TikTok account to private (Settings and privacy > Privacy) "
        "and try again.",
    ),
    "url_ownership_unverified": Reason(
        PermissionDenied,
        "TikTok fetches videos only from web addresses verified for this app, and this "
        "bot's address is not one. Verify the domain with TikTok or turn "
        "TIKTOK_PULL_FROM_URL off.",
    ),
    "spam_risk_text": Reason(
        InvalidRequest, "TikTok flagged the caption as spam; change the text and try again."
    ),
    "privacy_level_option_mismatch": Reason(
        InvalidRequest,
        "That privacy is not available for this TikTok account; ask again with another one.",
    ),
    "invalid_param": Reason(InvalidRequest, "TikTok refused the request as invalid while {doing}."),
    "invalid_params": Reason(
        InvalidRequest, "TikTok refused the request as invalid while {doing}."
    ),
    "invalid_file_upload": Reason(InvalidRequest, _FILE + " (use MP4, MOV or WebM)."),
    "file_format_check_failed": Reason(InvalidRequest, _FILE + " (use MP4, MOV or WebM)."),
    "duration_check_failed": Reason(
        InvalidRequest, _FILE + ": it is longer than this account may post."
    ),
    "frame_rate_check_failed": Reason(
        InvalidRequest, _FILE + ": its frame rate must be 23 to 60 fps."
    ),
    "picture_size_check_failed": Reason(
        InvalidRequest, _FILE + ": each side must be 360 to 4096 pixels."
    ),
    "publish_cancelled": Reason(InvalidRequest, "The TikTok post was cancelled."),
    "video_pull_failed": Reason(
        PlatformUnavailable, "TikTok could not download the video from its web address."
    ),
    "internal_error": Reason(
        PlatformUnavailable, "TikTok had an internal error while {doing}; try again later."
    ),
    "internal": Reason(
        PlatformUnavailable, "TikTok had an internal error while {doing}; try again later."
    ),
}


def envelope(body: Any) -> tuple[str | None, str, str]:
    """(code, TikTok's message, log_id) of an answer body; code None when it has none."""
    if not isinstance(body, dict):
        return None, "", ""
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        log_id = error.get("log_id") or error.get("logid") or ""
        return (str(code) if code else None), str(error.get("message") or ""), str(log_id)
    if isinstance(error, str) and error:  # the OAuth endpoints' flat shape
        return error, str(body.get("error_description") or ""), str(body.get("log_id") or "")
    return None, "", ""


def map_error(
    code: str | None, *, status: int, doing: str, retry_after: float | None = None
) -> IntegrationError:
    """The typed error for a TikTok code (or, for an unknown code, the HTTP status)."""
    reason = REASONS.get(code or "")
    if reason is None:
        reason = _by_status(status)
    wait = retry_after
    if reason.kind is RateLimited and wait is None:
        wait = DEFAULT_RATE_LIMIT_WAIT
    message = reason.message.format(doing=doing, wait=format_wait(wait or 0), status=status)
    return reason.kind(message, platform=PLATFORM, status=status, reason=code, retry_after=wait)


def _by_status(status: int) -> Reason:
    if status == 401:
        return Reason(TokenExpired, "TikTok refused the access token while {doing}.")
    if status == 403:
        return Reason(PermissionDenied, "TikTok refused {doing}.")
    if status == 404:
        return Reason(NotFound, "TikTok could not find what was asked for while {doing}.")
    if status == 429:
        return REASONS["rate_limit_exceeded"]
    if status >= 500 or status == 408:
        return Reason(
            PlatformUnavailable, "TikTok is having trouble ({status}) while {doing}; try later."
        )
    return REASONS["invalid_params"]


def error_from_response(response: httpx.Response, *, doing: str) -> IntegrationError | None:
    """The error an answer stands for (logged with TikTok's log_id), or None if it succeeded."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message, log_id = envelope(body)
    status = response.status_code
    if status < 400 and code in (None, "ok"):
        if isinstance(body, dict):
            return None
        return PlatformUnavailable(
            f"TikTok sent an answer we could not read while {doing}; try again later.",
            platform=PLATFORM,
            status=status,
            reason="bad_response",
        )
    log.warning(
        "tiktok error",
        extra={
            "status": status,
            "code": code,
            "log_id": log_id or response.headers.get("x-tt-logid", ""),
            "tiktok_message": message[:200],
        },
    )
    return map_error(
        code,
        status=status,
        doing=doing,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def failure(fail_reason: str, *, doing: str) -> IntegrationError:
    """A post TikTok accepted and then failed (`status: FAILED`, `fail_reason`)."""
    return map_error(fail_reason or "internal", status=200, doing=doing)


def unavailable(exc: Exception, *, doing: str) -> PlatformUnavailable:
    """No answer at all (connection refused, cut, timed out)."""
    return PlatformUnavailable(
        f"Could not reach TikTok while {doing} ({type(exc).__name__}); try again later.",
        platform=PLATFORM,
        reason=type(exc).__name__,
    )
