"""HTTP to the Instagram Graph API, and Graph errors turned into `integrations.errors`.

Graph answers failures with `{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id", ...}}`, usually with HTTP 400 whatever the cause, so the mapping is on
`code`/`error_subcode` first and the HTTP status second. The token endpoint on
api.instagram.com may instead answer `{"error_type", "code", "error_message"}`.

Messages on raised errors are ours, written for the chat; Graph's own message goes
only to the log, and tokens travel in the Authorization header, never in a message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

import httpx

from integrations.errors import (
    ErrorMapper,
    IntegrationError,
    NeedsRelink,
    NotFound,
    PermissionDenied,
    PlatformUnavailable,
    QuotaExceeded,
    RateLimited,
    ReasonRule,
)
from integrations.http import parse_retry_after

log = logging.getLogger(__name__)

PLATFORM = "instagram"

# Graph error codes (developers.facebook.com Graph API / Instagram error-code references).
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
TOKEN_CODES = frozenset({190, 102})
PERMISSION_CODES = frozenset({3, 10, *range(200, 300)})
TRANSIENT_CODES = frozenset({1, 2, -1, -2})
PUBLISH_LIMIT_SUBCODE = 2207042
OBJECT_MISSING = "100/33"  # code 100 (invalid parameter), subcode 33: the object is gone
ALIASES_MISSING = "803"  # a multiple-id read naming ids that do not exist
# Which ids were gone, as Graph's message names them (object reads, multiple-id reads).
_GONE_IDS = (
    re.compile(r"Object with ID '(\d+)' does not exist"),
    re.compile(r"aliases you requested do not exist: ([\d,\s]+)"),
)
DEFAULT_RATE_LIMIT_WAIT = 60.0

_RATE_LIMITED = ReasonRule(
    RateLimited,
    "{display} is rate-limiting requests right now; try again in about {wait}.",
    default_wait=DEFAULT_RATE_LIMIT_WAIT,
)
_RELINK = ReasonRule(
    NeedsRelink,
    "{display} no longer accepts this account's sign-in (it expired or access was removed). "
    "Link the {display} account again.",
)
_PERMISSION = ReasonRule(
    PermissionDenied,
    "{display} refused: the linked account did not grant the permission this needs. "
    "Link it again and allow all requested permissions.",
)
_PUBLISH_LIMIT = ReasonRule(
    QuotaExceeded,
    "This {display} account has reached its limit of posts published through apps "
    "in the last 24 hours. Try again later.",
)
_TRANSIENT = ReasonRule(
    PlatformUnavailable, "{display} is having trouble right now. Try again in a few minutes."
)

# Table keys, most specific first: "code/subcode", "*/subcode", "code", "transient".
REASONS: Final = {
    **{str(code): _RATE_LIMITED for code in RATE_LIMIT_CODES},
    "9": _PUBLISH_LIMIT,
    f"*/{PUBLISH_LIMIT_SUBCODE}": _PUBLISH_LIMIT,
    **{str(code): _RELINK for code in TOKEN_CODES},
    **{str(code): _PERMISSION for code in PERMISSION_CODES},
    **{str(code): _TRANSIENT for code in TRANSIENT_CODES},
    "transient": _TRANSIENT,
    OBJECT_MISSING: ReasonRule(NotFound, "That {display} post or account no longer exists."),
    ALIASES_MISSING: ReasonRule(NotFound, "That {display} post or account no longer exists."),
}

ERRORS: Final = ErrorMapper(platform=PLATFORM, display="Instagram", reasons=REASONS)

Params = Mapping[str, str | int | float]


class GoneObjects(NotFound):
    """NotFound naming the ids Graph said were gone (so a batch can be read without them)."""

    def __init__(self, error: NotFound, ids: tuple[str, ...]) -> None:
        super().__init__(
            str(error),
            platform=error.platform,
            status=error.status,
            reason=error.reason,
            retry_after=error.retry_after,
        )
        self.ids = ids


def gone_ids(message: str) -> tuple[str, ...]:
    """The object ids a Graph error message says do not exist (none if it names none)."""
    for pattern in _GONE_IDS:
        found = pattern.search(message)
        if found is not None:
            return tuple(i.strip() for i in found.group(1).split(",") if i.strip())
    return ()


class GraphClient:
    """Small Graph API caller: versioned URLs, bearer auth, error mapping.

    `http` comes from `integrations.http.make_client`, which retries what can be
    retried (GETs) and reports network failures as `PlatformUnavailable`; nothing is
    retried here.
    """

    def __init__(self, http: httpx.AsyncClient, *, graph_base: str, api_version: str) -> None:
        self._http = http
        self._base = graph_base.rstrip("/")
        self._version = api_version.strip("/")

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
        """GET a Graph path (the transport retries it: reads are idempotent)."""
        return await self.send(
            "GET", self.url(path, versioned=versioned), token=token, params=params
        )

    async def post(self, path: str, *, token: str, data: Params | None = None) -> dict[str, Any]:
        """POST form fields to a Graph path; never retried (creating twice is worse)."""
        return await self.send("POST", self.url(path), token=token, data=data)

    async def send(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        params: Params | None = None,
        data: Params | None = None,
    ) -> dict[str, Any]:
        """Send; return the JSON object of a success, else raise its IntegrationError."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self._http.request(
            method,
            url,
            params=dict(params) if params else None,
            data=dict(data) if data else None,
            headers=headers,
        )
        body = _json(response)
        if response.status_code < 400 and isinstance(body, dict) and "error" not in body:
            return body
        if response.status_code < 400 and not isinstance(body, dict):
            raise PlatformUnavailable(
                "Instagram sent an answer we could not read. Try again later.",
                platform=PLATFORM,
                status=response.status_code,
                reason="bad_response",
            )
        raise error_from_response(response)


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
    error = map_graph_error(
        status=status,
        code=code,
        subcode=subcode,
        transient=bool(envelope.get("is_transient")),
        retry_after=_retry_after(response),
    )
    if isinstance(error, NotFound):
        ids = gone_ids(str(envelope.get("message") or ""))
        if ids:
            return GoneObjects(error, ids)
    return error


def map_graph_error(
    *,
    status: int,
    code: int | None,
    subcode: int | None,
    transient: bool = False,
    retry_after: float | None = None,
) -> IntegrationError:
    """Graph's (status, code, subcode) -> an error: the code table first, then the status."""
    reason = f"graph_{code}" + (f"_{subcode}" if subcode else "") if code is not None else None
    keys: list[str] = []
    if code is not None and subcode is not None:
        keys.append(f"{code}/{subcode}")
    if subcode is not None:
        keys.append(f"*/{subcode}")
    if code is not None:
        keys.append(str(code))
    if transient:
        keys.append("transient")
    return ERRORS(status, reason=reason, keys=keys, retry_after=retry_after)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait, from Retry-After or Meta's usage headers' estimated_time_to_regain_access."""
    header = parse_retry_after(response.headers.get("retry-after"))
    if header is not None:
        return header
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
