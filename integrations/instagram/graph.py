"""HTTP to the Instagram Graph API, and Graph errors turned into `integrations.errors`.

Graph answers failures with `{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id", ...}}`, usually with HTTP 400 whatever the cause, so the mapping is on
`code`/`error_subcode` first and the HTTP status second. The token endpoint on
api.instagram.com may instead answer `{"error_type", "code", "error_message"}`.

Messages on raised errors are ours, written for the chat; Graph's own message goes
only to the log, and tokens travel in the Authorization header, never in a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

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

log = logging.getLogger(__name__)

PLATFORM = "instagram"

# Graph error codes (developers.facebook.com Graph API / Instagram error-code references).
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
TOKEN_CODES = frozenset({190, 102})
PERMISSION_CODES = frozenset({3, 10})
TRANSIENT_CODES = frozenset({1, 2, -1, -2})
PUBLISH_LIMIT_SUBCODE = 2207042
OBJECT_MISSING_SUBCODE = 33
DEFAULT_RATE_LIMIT_WAIT = 60.0

Params = Mapping[str, str | int | float]


class GraphClient:
    """Small Graph API caller: versioned URLs, bearer auth, error mapping, GET retries."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        graph_base: str,
        api_version: str,
        get_attempts: int = 2,
        retry_backoff_seconds: float = 0.5,
    ) -> None:
        self._http = http
        self._base = graph_base.rstrip("/")
        self._version = api_version.strip("/")
        self._get_attempts = max(1, get_attempts)
        self._backoff = retry_backoff_seconds

    def url(self, path: str, *, versioned: bool = True) -> str:
        prefix = f"{self._base}/{self._version}" if versioned and self._version else self._base
        return f"{prefix}/{path.lstrip('/')}"

    async def get(
        self,
        path: str,
        *,
        token: str | None,
        params: Params | None = None,
        versioned: bool = True,
    ) -> dict[str, Any]:
        """GET a Graph path; retried once on 5xx/network errors since reads are idempotent."""
        return await self.send(
            "GET", self.url(path, versioned=versioned), token=token, params=params, retry=True
        )

    async def post(self, path: str, *, token: str, data: Params | None = None) -> dict[str, Any]:
        """POST form fields to a Graph path; never retried here (creating twice is worse)."""
        return await self.send("POST", self.url(path), token=token, data=data, retry=False)

    async def send(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        params: Params | None = None,
        data: Params | None = None,
        retry: bool,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        attempts = self._get_attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                response = await self._http.request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    data=dict(data) if data else None,
                    headers=headers,
                )
            except httpx.TimeoutException as exc:
                error: IntegrationError = PlatformUnavailable(
                    "Instagram did not answer in time. Try again in a minute.",
                    platform=PLATFORM,
                    reason="timeout",
                )
                cause: BaseException | None = exc
            except httpx.TransportError as exc:
                error = PlatformUnavailable(
                    "Instagram could not be reached. Try again in a minute.",
                    platform=PLATFORM,
                    reason="network",
                )
                cause = exc
            else:
                if response.status_code < 400:
                    body = _json(response)
                    if isinstance(body, dict) and "error" not in body:
                        return body
                    if not isinstance(body, dict):
                        raise PlatformUnavailable(
                            "Instagram sent an answer we could not read. Try again later.",
                            platform=PLATFORM,
                            status=response.status_code,
                            reason="bad_response",
                        )
                error = error_from_response(response)
                cause = None
            if not (error.retryable and isinstance(error, PlatformUnavailable)) or (
                attempt == attempts
            ):
                raise error from cause
            log.info(
                "instagram call failed, retrying",
                extra={"reason": error.reason, "status": error.status, "attempt": attempt},
            )
            await asyncio.sleep(self._backoff * attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def error_from_response(response: httpx.Response) -> IntegrationError:
    """The typed error for a failed Graph (or Instagram OAuth) response."""
    status = response.status_code
    body = _json(response)
    envelope: dict[str, Any] = {}
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            envelope = body["error"]
        elif "error_type" in body or "error_message" in body:
            # Instagram OAuth's older shape: {"error_type", "code", "error_message"}.
            envelope = {
                "type": body.get("error_type"),
                "code": body.get("code"),
                "message": body.get("error_message"),
            }
    code = _int(envelope.get("code"))
    subcode = _int(envelope.get("error_subcode"))
    log.warning(
        "instagram error",
        extra={
            "status": status,
            "code": code,
            "subcode": subcode,
            "type": envelope.get("type"),
            "fbtrace_id": envelope.get("fbtrace_id"),
            "graph_message": str(envelope.get("message") or "")[:200],
        },
    )
    return map_graph_error(
        status=status,
        code=code,
        subcode=subcode,
        error_type=str(envelope.get("type") or ""),
        transient=bool(envelope.get("is_transient")),
        retry_after=_retry_after(response),
    )


def map_graph_error(
    *,
    status: int,
    code: int | None,
    subcode: int | None,
    error_type: str = "",
    transient: bool = False,
    retry_after: float | None = None,
) -> IntegrationError:
    """Pure mapping from Graph's (status, code, subcode) to an error with a chat-safe message."""
    reason = f"graph_{code}" + (f"_{subcode}" if subcode else "") if code is not None else None
    kw: dict[str, Any] = {"platform": PLATFORM, "status": status, "reason": reason}
    if code in RATE_LIMIT_CODES or status == 429:
        wait = retry_after if retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
        return RateLimited(
            f"Instagram is rate-limiting requests right now; try again in about "
            f"{_human_wait(wait)}.",
            retry_after=wait,
            **kw,
        )
    if code == 9 or subcode == PUBLISH_LIMIT_SUBCODE:
        return QuotaExceeded(
            "This Instagram account has reached its limit of posts published through apps "
            "in the last 24 hours. Try again later.",
            retry_after=retry_after,
            **kw,
        )
    if code in TOKEN_CODES or status == 401:
        return NeedsRelink(
            "Instagram no longer accepts this account's sign-in (it expired or access was "
            "removed). Link the Instagram account again.",
            **kw,
        )
    if code in PERMISSION_CODES or (code is not None and 200 <= code <= 299) or status == 403:
        return PermissionDenied(
            "Instagram refused: the linked account did not grant the permission this needs. "
            "Link it again and allow all requested permissions.",
            **kw,
        )
    if status >= 500 or code in TRANSIENT_CODES or transient:
        return PlatformUnavailable(
            "Instagram is having trouble right now. Try again in a few minutes.",
            retry_after=retry_after,
            **kw,
        )
    if status == 404 or (code == 100 and subcode == OBJECT_MISSING_SUBCODE):
        return NotFound("That Instagram post or account no longer exists.", **kw)
    return InvalidRequest("Instagram refused the request as invalid.", **kw)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait, from Retry-After or Meta's usage headers' estimated_time_to_regain_access."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    minutes: list[float] = []
    for name in ("x-business-use-case-usage", "x-app-usage", "x-ad-account-usage"):
        raw = response.headers.get(name)
        if not raw:
            continue
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            continue
        _collect_regain(parsed, minutes)
    positive = [m for m in minutes if m > 0]
    return max(positive) * 60.0 if positive else None


def _collect_regain(node: Any, out: list[float]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "estimated_time_to_regain_access" and isinstance(value, int | float):
                out.append(float(value))
            else:
                _collect_regain(value, out)
    elif isinstance(node, list):
        for item in node:
            _collect_regain(item, out)


def _human_wait(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} seconds"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"
