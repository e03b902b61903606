"""Supabase token verification: keys from a fake JWKS over HTTP, every refusal that matters."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from bot.api.auth import InvalidToken
from tests.bot.api.conftest import SECRET, ec_signer, sign, sign_hs


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, object], payload: dict[str, object], signature: bytes) -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    return head + "." + _b64(signature)


async def test_es256_and_rs256_tokens_from_the_jwks_are_accepted(jwks, make_verifier):
    verifier = make_verifier()
    ec_key, rsa_key = jwks.signers
    user = await verifier.verify(sign(ec_key))
    assert user.subject == "7f1c3a2e-0000-4000-8000-000000000001"
    assert (await verifier.verify(sign(rsa_key, sub="other-user"))).subject == "other-user"
    assert jwks.hits == 1  # one fetch served both keys


async def test_legacy_hs256_accepted_only_with_the_secret(make_verifier):
    assert (await make_verifier(secret=SECRET).verify(sign_hs())).subject
    with pytest.raises(InvalidToken, match="algorithm"):
        await make_verifier().verify(sign_hs())  # no secret configured: HS256 is off
    with pytest.raises(InvalidToken):
        await make_verifier(secret=SECRET).verify(
            sign_hs(secret="another-projects-shared-secret-0123456789abcdef")
        )


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": "anon-app"}, "InvalidAudience"),
        ({"iss": "https://other-project.supabase.co/auth/v1"}, "InvalidIssuer"),
        ({"role": "anon"}, "signed-in user"),
        ({"role": "service_role"}, "signed-in user"),
        ({"role": None}, "MissingRequiredClaim"),
        ({"exp": None}, "MissingRequiredClaim"),
        ({"sub": None}, "MissingRequiredClaim"),
    ],
)
async def test_claims_are_checked(jwks, make_verifier, overrides, why):
    with pytest.raises(InvalidToken, match=why):
        await make_verifier().verify(sign(jwks.signers[0], **overrides))


async def test_another_projects_key_is_refused(jwks, make_verifier):
    stranger = ec_signer("key-1")  # same kid, another key
    with pytest.raises(InvalidToken, match="InvalidSignature"):
        await make_verifier().verify(sign(stranger))


async def test_alg_none_is_refused(jwks, make_verifier):
    from tests.bot.api.conftest import claims

    token = _unsigned({"alg": "none", "typ": "JWT"}, claims(), b"")
    with pytest.raises(InvalidToken, match="algorithm"):
        await make_verifier(secret=SECRET).verify(token)
    token = _unsigned({"alg": "NONE", "kid": "key-1"}, claims(), b"")
    with pytest.raises(InvalidToken, match="algorithm"):
        await make_verifier(secret=SECRET).verify(token)


async def test_hs256_signed_with_the_public_key_is_refused(jwks, make_verifier):
    """Algorithm confusion: an HS256 token whose HMAC key is the RSA public key (PEM or JWK)."""
    from tests.bot.api.conftest import claims

    rsa_key = jwks.signers[1]
    pem = rsa_key.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
    head = _unsigned(header, claims(), b"").rsplit(".", 1)[0]
    forged = head + "." + _b64(hmac.new(pem, head.encode(), hashlib.sha256).digest())
    for verifier in (make_verifier(), make_verifier(secret=SECRET)):
        with pytest.raises(InvalidToken):
            await verifier.verify(forged)
    # And an RS256 header on a kid whose key is EC: the key's own algorithm decides.
    mixed = sign(jwks.signers[0]).split(".")
    mixed[0] = _b64(json.dumps({"alg": "RS256", "kid": "key-1"}).encode())
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await make_verifier().verify(".".join(mixed))


async def test_key_rotation_fetches_a_new_kid_once_then_caches(jwks, make_verifier):
    verifier = make_verifier(refresh_interval=0.2)
    await verifier.verify(sign(jwks.signers[0]))
    assert jwks.hits == 1
    await asyncio.sleep(0.3)  # the cached set is older than the refresh interval
    rotated = ec_signer("key-2")
    jwks.signers = [rotated]  # the project rotated its signing key
    await verifier.verify(sign(rotated))
    assert jwks.hits == 2
    for _ in range(3):
        await verifier.verify(sign(rotated, sub="someone-else"))
    assert jwks.hits == 2


async def test_unknown_kids_refresh_at_most_once_per_interval(jwks, make_verifier):
    verifier = make_verifier()
    await verifier.verify(sign(jwks.signers[0]))
    for n in range(5):
        with pytest.raises(InvalidToken, match="unknown signing key"):
            await verifier.verify(sign(ec_signer(f"made-up-{n}")))
    assert jwks.hits == 1  # fetched moments ago: made-up kids do not refetch the set


async def test_malformed_tokens_are_refused(make_verifier):
    for token in ("", "abc", "a.b.c", "x" * 5000):
        with pytest.raises(InvalidToken):
            await make_verifier(secret=SECRET).verify(token)
