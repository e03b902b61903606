"""Supabase access tokens: verified with PyJWT, keys from the project's JWKS over httpx.

Accepted: ES256/RS256 tokens signed by a key of the project's JWKS
(`SUPABASE_URL/auth/v1/.well-known/jwks.json`, cached; an unknown `kid` refreshes it
at most once per `refresh_interval`), and HS256 tokens under the legacy shared secret
(`SUPABASE_JWT_SECRET`) when it is set. Each algorithm has one kind of key: an HS256
token is only ever checked with the shared secret, never with a public key, so a token
"signed" with the public key (algorithm confusion) fails, and `alg: none` is refused.
`exp`, `aud` ("authenticated"), `iss` (this project) and `role` are required.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

log = logging.getLogger(__name__)

AUDIENCE = "authenticated"
ROLE = "authenticated"
ASYMMETRIC = frozenset({"ES256", "RS256"})
LEEWAY_SECONDS = 30


class InvalidToken(Exception):
    """The bearer token is missing or not acceptable; `str()` says why, without the token."""


class KeysUnavailable(Exception):
    """The project's JWKS could not be read (network, status, content)."""


@dataclass(frozen=True, slots=True)
class AppUser:
    """A verified Supabase user: `subject` is the JWT `sub` (the user's UUID). Nothing
    else of the token (email, name) is used: identity comes from `connect app` only."""

    subject: str


class JwksCache:
    """The project's signing keys by `kid`, fetched with httpx and refreshed on a miss."""

    def __init__(
        self, url: str, *, http: httpx.AsyncClient, refresh_interval: float = 60.0
    ) -> None:
        self._url = url
        self._http = http
        self._refresh_interval = refresh_interval
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key with this id; fetches the set when it is unknown (not more than once
        per interval, so tokens with made-up ids cannot make us hammer the endpoint)."""
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            now = time.monotonic()
            if self._fetched_at is not None and now - self._fetched_at < self._refresh_interval:
                return None
            self._fetched_at = now
            self._keys = await self._fetch()
        return self._keys.get(kid)

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        try:
            response = await self._http.get(self._url)
            response.raise_for_status()
            data: Any = response.json()
            keys = jwt.PyJWKSet.from_dict(data).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            log.warning("JWKS fetch failed", extra={"error": type(exc).__name__})
            raise KeysUnavailable(type(exc).__name__) from None
        return {k.key_id: k for k in keys if k.key_id}


class SupabaseVerifier:
    """Checks a Supabase access token and returns who it is for."""

    def __init__(
        self, *, supabase_url: str, jwt_secret: str | None, jwks: JwksCache | None
    ) -> None:
        self._issuer = supabase_url.rstrip("/") + "/auth/v1"
        self._secret = jwt_secret
        self._jwks = jwks

    async def verify(self, token: str) -> AppUser:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self._secret is not None:
            key = self._secret
        elif alg in ASYMMETRIC and self._jwks is not None:
            kid = header.get("kid")
            found = await self._jwks.key(kid) if isinstance(kid, str) else None
            if found is None or found.algorithm_name != alg:
                raise InvalidToken("unknown signing key")
            key = found.key
        else:
            raise InvalidToken("signing algorithm not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=AUDIENCE,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "aud", "iss", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token refused ({type(exc).__name__})") from None
        if (
            claims.get("role") != ROLE
            or not isinstance(claims.get("sub"), str)
            or not claims["sub"]
        ):
            raise InvalidToken("not a signed-in user's token")
        return AppUser(subject=claims["sub"])
