"""HTTP to open.tiktokapis.com: bearer JSON calls and the form-encoded OAuth calls.

Every request goes through the injected `httpx.AsyncClient` (in production it carries
retries, the breaker and the concurrency cap: no retry loop here). Reads are marked
idempotent so that client may retry them even when they are POSTs (TikTok's video
list/query, creator info and status are POST reads); post creation never is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from integrations.tiktok._errors import error_from_response, unavailable

JSON_TYPE = "application/json; charset=UTF-8"


class TikTokApi:
    """Small caller for TikTok's v2 API: URLs, auth, error mapping; returns `data`."""

    def __init__(self, http: httpx.AsyncClient, *, api_base: str) -> None:
        self._http = http
        self._base = api_base.rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str,
        doing: str,
        idempotent: bool,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one API request; the answer's `data` object, or the mapped error."""
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Content-Type"] = JSON_TYPE
        try:
            response = await self._http.request(
                method,
                f"{self._base}{path}",
                params=dict(params) if params else None,
                json=dict(body) if body is not None else None,
                headers=headers,
                extensions={"idempotent": idempotent},
            )
        except httpx.TransportError as exc:
            raise unavailable(exc, doing=doing) from None
        error = error_from_response(response, doing=doing)
        if error is not None:
            raise error
        data = response.json().get("data")
        return data if isinstance(data, dict) else {}

    async def form(
        self, url: str, fields: Mapping[str, str], *, doing: str, idempotent: bool = False
    ) -> dict[str, Any]:
        """POST form fields to an OAuth endpoint; its flat answer, or the mapped error."""
        try:
            response = await self._http.post(
                url,
                data=dict(fields),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                extensions={"idempotent": idempotent},
            )
        except httpx.TransportError as exc:
            raise unavailable(exc, doing=doing) from None
        if response.is_success and not response.content:
            return {}  # revoke answers an empty 200
        error = error_from_response(response, doing=doing)
        if error is not None:
            raise error
        body: dict[str, Any] = response.json()
        return body
