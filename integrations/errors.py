"""Errors from the outside world, typed so callers decide without parsing strings.

    IntegrationError                 any failure talking to a platform
    ├── NotConfigured                the platform's credentials are not set
    ├── PlatformUnavailable          network error, timeout, 5xx: try again later
    │   └── CircuitOpen              we stopped calling for a while after repeated failures
    ├── RateLimited                  429 or a local limiter said no (retry_after)
    ├── QuotaExceeded                a daily/project quota is spent (reason, retry_after)
    ├── AuthError                    the token was refused
    │   ├── TokenExpired             401: refresh once and retry
    │   └── NeedsRelink              refresh refused (invalid_grant) or token unreadable
    ├── PermissionDenied             403 for a reason other than quota
    ├── InvalidRequest               400: our input was wrong; never retried
    └── NotFound                     404: the post or account is gone

Every error carries the platform, and where known the HTTP status, the
platform's machine-readable reason and a retry delay. Messages are written for
the person in the chat and never contain a token, a URL with a token, or a
response body.
"""

from __future__ import annotations

import math


class IntegrationError(Exception):
    """Base class. `user_message` is safe to show in chat."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        platform: str,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.platform = platform
        self.status = status
        self.reason = reason
        self.retry_after = retry_after

    @property
    def user_message(self) -> str:
        return str(self)


class NotConfigured(IntegrationError):
    pass


class PlatformUnavailable(IntegrationError):
    retryable = True


class CircuitOpen(PlatformUnavailable):
    pass


class RateLimited(IntegrationError):
    retryable = True


class QuotaExceeded(IntegrationError):
    pass


class AuthError(IntegrationError):
    pass


class TokenExpired(AuthError):
    retryable = True


class NeedsRelink(AuthError):
    pass


class PermissionDenied(IntegrationError):
    pass


class InvalidRequest(IntegrationError):
    pass


class NotFound(IntegrationError):
    pass


def format_wait(seconds: float) -> str:
    """A short human duration for "try again in ...": "3 s", "2 min", "5 h 10 min"."""
    whole = max(math.ceil(seconds), 1)
    if whole < 60:
        return f"{whole} s"
    minutes = math.ceil(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
