"""RFC 9457 problem details for every answer of the API that is not a success.

`ProblemRoute` wraps each route (its dependencies included), so refusals from the
actions (`agent.actions.base.USER_ERRORS`), auth failures, validation errors and
limits all leave as `application/problem+json` with the action's chat-safe text as
`detail`. Anything else is a bug: logged, and answered with a bare 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from agent.actions.app_link import TooManyAttempts
from agent.actions.base import USER_ERRORS, NotAdmin, user_message
from bot.api.auth import InvalidToken, KeysUnavailable
from integrations import errors
from storage.accounts import TokenUnavailable
from storage.ratelimit import LimiterUnavailable

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """The problem-details body (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class ApiProblem(Exception):
    """Raised by the API's own checks (identity, workspace choice, limits)."""

    def __init__(
        self, status: int, detail: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail)
    return JSONResponse(
        body.model_dump(), status_code=status, media_type=MEDIA_TYPE, headers=headers
    )


def retry_after(seconds: float | None) -> dict[str, str]:
    """The Retry-After header (whole seconds, at least 1)."""
    return {"Retry-After": str(max(1, math.ceil(seconds or 1)))}


# Integration errors by the status they answer with (the first matching class wins).
_INTEGRATION_STATUS: tuple[tuple[type[errors.IntegrationError], int], ...] = (
    (errors.RateLimited, 429),
    (errors.QuotaExceeded, 429),
    (errors.NotFound, 404),
    (errors.PermissionDenied, 403),
    (errors.AuthError, 409),
    (errors.InvalidRequest, 422),
    (errors.NotConfigured, 503),
    (errors.PlatformUnavailable, 503),
)


def from_exception(exc: Exception) -> JSONResponse | None:
    """The problem answer for a known refusal; None for anything else (a bug)."""
    if isinstance(exc, ApiProblem):
        return problem(exc.status, exc.detail, exc.headers)
    if isinstance(exc, InvalidToken):
        return problem(
            401,
            f"Sign in again: {exc}.",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if isinstance(exc, KeysUnavailable):
        return problem(503, "The sign-in keys could not be read; try again shortly.")
    if isinstance(exc, LimiterUnavailable):
        return problem(503, "The limiter is unreachable; try again shortly.")
    if isinstance(exc, TooManyAttempts):
        return problem(429, str(exc), retry_after(exc.retry_after))
    if isinstance(exc, RequestValidationError):
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return problem(422, where or "Invalid request.")
    if isinstance(exc, HTTPException):
        return problem(exc.status_code, str(exc.detail), exc.headers)
    if isinstance(exc, errors.IntegrationError):
        status = next((s for kind, s in _INTEGRATION_STATUS if isinstance(exc, kind)), 502)
        headers = retry_after(exc.retry_after) if status == 429 else None
        return problem(status, user_message(exc), headers)
    if isinstance(exc, TokenUnavailable):
        return problem(409, user_message(exc))
    if isinstance(exc, NotAdmin):
        return problem(403, str(exc))
    if isinstance(exc, USER_ERRORS):
        return problem(400, user_message(exc))
    return None


class ProblemRoute(APIRoute):
    """A route whose refusals (from dependencies or the handler) become problem details."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                answer = from_exception(exc)
                if answer is None:
                    log.exception("API route failed", extra={"path": request.url.path})
                    return problem(500, "Something went wrong on our side.")
                return answer

        return handle
