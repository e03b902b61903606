"""OAuth 2.0 with PKCE against the fake: consent URL, code exchange, rotation, revoke."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from integrations.base import SocialPlatform, TokenSet
from integrations.errors import AuthError, InvalidRequest, NeedsRelink, TokenExpired
from integrations.x import SCOPES
from tests.integrations.x.conftest import REDIRECT, XEnv


async def _consent(x: XEnv, verifier: str) -> str:
    url = x.make().authorization_url(state="st-1", code_verifier=verifier, redirect_uri=REDIRECT)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


async def test_authorization_url_carries_pkce_s256_and_scopes(x: XEnv) -> None:
    platform = x.make()
    assert isinstance(platform, SocialPlatform)
    verifier = "v" * 64
    url = platform.authorization_url(state="abc", code_verifier=verifier, redirect_uri=REDIRECT)
    assert url.startswith(f"{x.base}/i/oauth2/authorize?")
    assert "%20" in url and "+" not in url  # scopes space-separated, percent-encoded
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == expected.decode()
    assert query["code_challenge_method"] == "S256"
    assert query["response_type"] == "code"
    assert query["client_id"] == x.fake.client_id
    assert query["redirect_uri"] == REDIRECT and query["state"] == "abc"
    assert query["scope"].split(" ") == list(SCOPES)
    assert {"tweet.write", "media.write", "offline.access"} <= set(SCOPES)


async def test_exchange_with_basic_auth_then_profile(x: XEnv) -> None:
    platform = x.make()
    verifier = secrets.token_urlsafe(48)
    code = await _consent(x, verifier)
    token = await platform.exchange_code(code=code, code_verifier=verifier, redirect_uri=REDIRECT)
    assert token.access_token in x.fake.access and token.refresh_token in x.fake.refresh
    assert token.expires_at is not None
    lifetime = token.expires_at.timestamp() - x.clock.now()
    assert lifetime == pytest.approx(7200, abs=1)  # X access tokens last two hours
    assert set(token.scopes) == set(SCOPES)
    assert token.access_token not in repr(token) and x.fake.client_secret not in repr(platform)
    profile = await platform.profile(token)
    assert profile.external_id == x.user.id
    assert profile.handle == "studio_fern" and profile.display_name == "Fern Studio"
    assert profile.url == "https://x.com/studio_fern" and profile.followers == 1200


async def test_wrong_verifier_is_refused_and_the_code_is_spent(x: XEnv) -> None:
    platform = x.make()
    verifier = secrets.token_urlsafe(48)
    code = await _consent(x, verifier)
    with pytest.raises(InvalidRequest) as info:
        await platform.exchange_code(code=code, code_verifier="w" * 48, redirect_uri=REDIRECT)
    assert info.value.reason == "invalid_request" and code not in str(info.value)
    with pytest.raises(InvalidRequest):
        await platform.exchange_code(code=code, code_verifier=verifier, redirect_uri=REDIRECT)


async def test_wrong_client_secret_is_not_a_relink(x: XEnv) -> None:
    platform = x.make(x_client_secret="not-the-secret")
    with pytest.raises(AuthError) as info:
        await platform.refresh(x.token)
    assert type(info.value) is AuthError  # the app's fault: neither relink nor retry
    assert "X_CLIENT_SECRET" in str(info.value) and "not-the-secret" not in str(info.value)
    assert not x.fake.refresh[str(x.token.refresh_token)].used


async def test_refresh_stores_the_rotated_token_and_a_reused_one_needs_relink(
    x: XEnv, caplog: pytest.LogCaptureFixture
) -> None:
    platform = x.make()
    fresh = await platform.refresh(x.token)
    assert fresh.access_token != x.token.access_token
    assert fresh.refresh_token and fresh.refresh_token != x.token.refresh_token
    assert fresh.refresh_token in x.fake.refresh and not x.fake.refresh[fresh.refresh_token].used
    again = await platform.refresh(fresh)  # the rotated one works, once
    assert again.refresh_token not in (fresh.refresh_token, x.token.refresh_token)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NeedsRelink) as info:
        await platform.refresh(x.token)  # spent: X answers invalid_request
    assert info.value.reason == "invalid_request" and info.value.status == 400
    text = str(info.value) + caplog.text
    assert str(x.token.refresh_token) not in text and x.fake.client_secret not in text
    x.fake.refresh_error = "invalid_grant"  # RFC 6749's word for the same thing
    with pytest.raises(NeedsRelink) as info:
        await platform.refresh(fresh)
    assert info.value.reason == "invalid_grant"


async def test_no_refresh_token_needs_relink_without_a_call(x: XEnv) -> None:
    with pytest.raises(NeedsRelink):
        await x.make().refresh(TokenSet(access_token=x.token.access_token))
    assert x.fake.requests["POST /2/oauth2/token"] == 0


async def test_expired_access_token_is_token_expired_then_refresh_works(x: XEnv) -> None:
    platform = x.make()
    x.fake.expire_access_tokens()
    with pytest.raises(TokenExpired) as info:
        await platform.profile(x.token)
    assert info.value.status == 401 and info.value.retryable
    profile = await platform.profile(await platform.refresh(x.token))
    assert profile.external_id == x.user.id


async def test_revoke_revokes_both_tokens_and_is_idempotent(x: XEnv) -> None:
    platform = x.make()
    await platform.revoke(x.token)
    assert x.fake.revoked == [x.token.refresh_token, x.token.access_token]
    assert x.fake.requests["POST /2/oauth2/revoke"] == 2
    await platform.revoke(x.token)  # already gone: still fine
    with pytest.raises(TokenExpired):
        await platform.profile(x.token)
