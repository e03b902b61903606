"""Fixtures for the companion app API: test key pairs, a fake JWKS endpoint, token minting."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.api.auth import JwksCache, SupabaseVerifier
from tests.bot.conftest import link, make_deps, new_identity  # noqa: F401
from tests.fakes.server import serve_asgi

PROJECT = "https://abcd1234.supabase.co"
SECRET = "legacy-shared-secret-for-tests-0123456789abcdef"
JWKS_PATH = "/auth/v1/.well-known/jwks.json"


@dataclass
class Signer:
    """A private key, its kid and algorithm, and its public JWK."""

    kid: str
    alg: str
    key: Any

    def jwk(self) -> dict[str, Any]:
        algo = jwt.algorithms.ECAlgorithm if self.alg == "ES256" else jwt.algorithms.RSAAlgorithm
        data: dict[str, Any] = json.loads(algo.to_jwk(self.key.public_key()))
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}


def ec_signer(kid: str) -> Signer:
    return Signer(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def rsa_signer(kid: str) -> Signer:
    return Signer(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "7f1c3a2e-0000-4000-8000-000000000001",
        "aud": "authenticated",
        "iss": PROJECT + "/auth/v1",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
        "email": "person@example.com",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(signer: Signer, **overrides: Any) -> str:
    return jwt.encode(
        claims(**overrides), signer.key, algorithm=signer.alg, headers={"kid": signer.kid}
    )


def sign_hs(secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


@dataclass
class FakeJwks:
    """The project's JWKS endpoint on loopback; `hits` counts fetches."""

    signers: list[Signer]
    hits: int = 0
    base_url: str = ""
    served: list[str] = field(default_factory=list)

    async def endpoint(self, request: Request) -> JSONResponse:
        self.hits += 1
        return JSONResponse({"keys": [s.jwk() for s in self.signers]})


@pytest.fixture
async def jwks() -> AsyncIterator[FakeJwks]:
    fake = FakeJwks([ec_signer("key-1"), rsa_signer("key-rsa")])
    app = Starlette(routes=[Route(JWKS_PATH, fake.endpoint)])
    async with serve_asgi(app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
async def make_verifier(jwks: FakeJwks) -> AsyncIterator[Callable[..., SupabaseVerifier]]:
    """A verifier for PROJECT whose keys come from the fake JWKS (over real HTTP)."""
    async with httpx.AsyncClient() as http:

        def build(*, secret: str | None = None, refresh_interval: float = 60.0) -> SupabaseVerifier:
            cache = JwksCache(
                jwks.base_url + JWKS_PATH, http=http, refresh_interval=refresh_interval
            )
            return SupabaseVerifier(supabase_url=PROJECT, jwt_secret=secret, jwks=cache)

        yield build
