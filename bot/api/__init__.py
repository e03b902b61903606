"""The companion app's HTTP API (/api/v1) behind Supabase auth: another front-end.

`build_api_router` is mounted by `bot.assembly` when SUPABASE_URL is set (else the
API is absent: 404). See `routes` (HTTP <-> actions), `auth` (token verification)
and `problems` (RFC 9457 errors).
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter

from bot.api.auth import JwksCache, SupabaseVerifier
from bot.api.routes import PREFIX, DepsFactory, build_router
from bot.api.uploads import UploadStore

JWKS_PATH = "/auth/v1/.well-known/jwks.json"
# Routes that stream their request body to disk under their own cap (API_UPLOAD_MAX_BYTES):
# the web role's small default body cap (bot.web.BodyLimit) must not buffer or refuse them.
STREAMED_PATHS = frozenset({f"{PREFIX}/uploads"})


def build_api_router(
    *,
    deps: DepsFactory,
    supabase_url: str,
    jwt_secret: str | None,
    http: httpx.AsyncClient,
    upload_store: UploadStore,
) -> APIRouter:
    """The /api/v1 router, verifying tokens of the project at `supabase_url`."""
    jwks = JwksCache(supabase_url.rstrip("/") + JWKS_PATH, http=http)
    verifier = SupabaseVerifier(supabase_url=supabase_url, jwt_secret=jwt_secret, jwks=jwks)
    return build_router(deps=deps, verifier=verifier, upload_store=upload_store)


__all__ = ["STREAMED_PATHS", "UploadStore", "build_api_router"]
