"""One place where X API v2 calls are sent: pacing, bearer auth, JSON, error mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from integrations.errors import PlatformUnavailable
from integrations.http import BodyParts
from integrations.x._errors import PLATFORM, error_from_response, unavailable
from integrations.x.pacing import RatePacer, pacing_key

Params = Mapping[str, str | int]


class XApi:
    """Sends API v2 requests through the injected client, paced per endpoint and token.

    `endpoint` names the rate-limit window ("GET /2/tweets"); `idempotent` tells the
    shared transport whether the request may be sent again after a failure.
    """

    def __init__(self, http: httpx.AsyncClient, *, api_base: str, pacer: RatePacer) -> None:
        self._http = http
        self._base = api_base.rstrip("/")
        self.pacer = pacer

    def url(self, path: str) -> str:
        return f"{self._base}/{path.lstrip('/')}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str,
        endpoint: str,
        doing: str,
        params: Params | None = None,
        json: Any = None,
        content: bytes | BodyParts | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """Send one request; return its JSON object (empty for an empty 2xx body)."""
        key = pacing_key(endpoint, token)
        await self.pacer.before(key)
        extensions = {} if idempotent is None else {"idempotent": idempotent}
        request = self._http.build_request(
            method,
            self.url(path),
            params=dict(params) if params else None,
            json=json,
            content=content if isinstance(content, bytes) else None,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            extensions=extensions,
        )
        if isinstance(content, BodyParts):
            request.stream = content
            request.headers["Content-Length"] = str(content.size)
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise unavailable(exc, doing=doing) from None
        if content is not None:
            # The response (read and closed by now) and its bound stream refer to each other,
            # and through the request to our body: a cycle only the cyclic GC frees, often
            # late. Break it, so an upload holds one segment at a time, not dozens.
            response.stream = httpx.ByteStream(b"")
        self.pacer.after(key, response.headers)
        if response.status_code >= 400:
            raise error_from_response(response, doing=doing, now=self.pacer.clock.now())
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PlatformUnavailable(
                f"X sent an answer we could not read while {doing}.",
                platform=PLATFORM,
                status=response.status_code,
                reason="bad_response",
            )
        return body
