"""Errors from the outside world, typed so callers decide without parsing strings.

    IntegrationError                 any failure talking to a platform
    ├── NotConfigured                the platform's credentials are not set
    ├── PlatformUnavailable          network error, timeout, 5xx: try again later
    │   ├── CircuitOpen              we stopped calling for a while after repeated failures
    │   └── ConnectionLost           the connection dropped during a request that could not
    │                                be sent again safely (a streamed upload chunk, a POST):
    │                                the platform may hold part or all of it, so the sender
    │                                reconciles (the YouTube uploader asks for its offset)
    ├── RateLimited                  429 or a local limiter said no (retry_after)
    ├── QuotaExceeded                a daily/project quota is spent (reason, retry_after)
    ├── AuthError                    the token (or the app's OAuth client) was refused
    │   ├── TokenExpired             401: refresh once and retry
    │   └── NeedsRelink              refresh refused (invalid_grant) or token unreadable
    ├── PermissionDenied             403 for a reason other than quota
    ├── InvalidRequest               400: our input was wrong; never retried
    └── NotFound                     404/410: the post or account is gone

Every error carries the platform, and where known the HTTP status, the
platform's machine-readable reason and a retry delay. Messages are written for
the person in the chat and never contain a token, a URL with a token, or a
response body.

An HTTP status becomes an error in one place: `error_for_status` words the
generic cases, and an `ErrorMapper` lets a platform put its own table of reasons
(YouTube's `quotaExceeded`, Graph's error codes) in front of it. Every wait shown
to a person is worded by `format_wait`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


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


class ConnectionLost(PlatformUnavailable):
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


# --------------------------------------------------------------------------------------
# Wording
# --------------------------------------------------------------------------------------


def format_wait(seconds: float) -> str:
    """A wait as people read it in "try again in ...": "3 s", "2 min", "5 h 10 min".

    Rounded up, so the person never comes back too early; never less than "1 s".
    """
    whole = max(math.ceil(seconds), 1)
    if whole < 60:
        return f"{whole} s"
    minutes = math.ceil(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _when(retry_after: float | None) -> str:
    return f"in about {format_wait(retry_after)}" if retry_after else "shortly"


# --------------------------------------------------------------------------------------
# Status -> error
# --------------------------------------------------------------------------------------


def error_for_status(
    platform: str,
    display: str,
    status: int,
    *,
    reason: str | None = None,
    retry_after: float | None = None,
    doing: str | None = None,
) -> IntegrationError:
    """The error a failed HTTP status stands for, worded for the chat.

    `display` is the platform's name as people write it ("YouTube"); `doing` names the
    step ("reading the channel") so the person knows what failed.
    """
    where = f" while {doing}" if doing else ""
    # The platform's reason code helps the person (and whoever they ask) tell refusals apart.
    code = f" ({reason})" if reason else ""
    kind: type[IntegrationError]
    if status == 429:
        kind = RateLimited
        message = f"{display} is rate limiting us{where}; try again {_when(retry_after)}."
    elif status == 408 or status >= 500:
        kind = PlatformUnavailable
        message = f"{display} is having trouble right now{where}; try again {_when(retry_after)}."
    elif status == 400:
        kind, message = InvalidRequest, f"{display} refused the request as invalid{where}{code}."
    elif status == 401:
        kind, message = TokenExpired, f"{display} refused the access token{where}."
    elif status == 403:
        kind = PermissionDenied
        message = (
            f"{display} denied permission{where}{code}: the linked account may lack the "
            "permission this needs, or the account cannot do this yet."
        )
    elif status in (404, 410):
        kind, message = NotFound, f"{display} could not find what was asked for{where}."
    else:
        kind = IntegrationError
        detail = f"HTTP {status}, {reason}" if reason else f"HTTP {status}"
        message = f"{display} refused the request{where} ({detail})."
    return kind(message, platform=platform, status=status, reason=reason, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class ReasonRule:
    """What one of a platform's machine-readable reasons means, whatever the HTTP status.

    `message` may name `{display}` and `{wait}`; `default_wait` (seconds, or a function
    of now) is the retry delay when the response gives none, and is required when the
    message names `{wait}`.
    """

    error: type[IntegrationError]
    message: str
    default_wait: float | Callable[[], float] | None = None

    def __post_init__(self) -> None:
        if "{wait}" in self.message and self.default_wait is None:
            raise ValueError("a message that names {wait} needs a default_wait")

    def wait(self, retry_after: float | None) -> float | None:
        """The retry delay: the response's own if it gave one, else this rule's default."""
        if retry_after is not None or self.default_wait is None:
            return retry_after
        return self.default_wait() if callable(self.default_wait) else self.default_wait


class ErrorMapper:
    """One platform's status-to-error mapping: its reason table first, then the status."""

    def __init__(self, *, platform: str, display: str, reasons: Mapping[str, ReasonRule]) -> None:
        self.platform = platform
        self.display = display
        self._reasons = dict(reasons)

    def __call__(
        self,
        status: int,
        *,
        reason: str | None = None,
        keys: Sequence[str] | None = None,
        retry_after: float | None = None,
        doing: str | None = None,
    ) -> IntegrationError:
        """The error for a failed response.

        `reason` is recorded on the error; `keys` are the table entries to try, most
        specific first (default: the reason itself), e.g. Graph's "190/463" then "190".
        """
        tried = keys if keys is not None else ([reason] if reason else [])
        for key in tried:
            rule = self._reasons.get(key)
            if rule is None:
                continue
            wait = rule.wait(retry_after)
            message = rule.message.format(
                display=self.display, wait=format_wait(wait) if wait is not None else ""
            )
            return rule.error(
                message, platform=self.platform, status=status, reason=reason, retry_after=wait
            )
        return error_for_status(
            self.platform,
            self.display,
            status,
            reason=reason,
            retry_after=retry_after,
            doing=doing,
        )
