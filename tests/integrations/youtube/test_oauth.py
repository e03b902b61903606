"""Google OAuth through authlib against the fake: PKCE, offline access, refresh, revoke."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from integrations.base import SocialPlatform, TokenSet
from integrations.errors import NeedsRelink
from integrations.youtube import SCOPES
from tests.fakes.google import FakeGoogle

REDIRECT = "http://127.0.0.1:9/oauth/youtube/callback"


async def _consent(google: FakeGoogle, platform, verifier: str) -> str:
    url = platform.authorization_url(state="st-1", code_verifier=verifier, redirect_uri=REDIRECT)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


async def test_authorization_url_carries_pkce_offline_consent_and_scopes(google, make_platform):
    platform = make_platform()
    assert isinstance(platform, SocialPlatform)
    url = platform.authorization_url(state="abc", code_verifier="v" * 48, redirect_uri=REDIRECT)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{google.base}/o/oauth2/v2/auth?")
    assert query["state"] == "abc"
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] and query["code_challenge"] != "v" * 48
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == REDIRECT
    assert set(query["scope"].split()) == set(SCOPES)


async def test_code_exchange_with_verifier_then_profile(google, make_platform):
    channel = google.add_channel("My Channel")
    platform = make_platform()
    verifier = secrets.token_urlsafe(48)
    code = await _consent(google, platform, verifier)
    token = await platform.exchange_code(code=code, code_verifier=verifier, redirect_uri=REDIRECT)
    assert token.access_token.startswith("ya29.") and token.refresh_token
    assert token.expires_at is not None
    assert "access_token" not in repr(token) and token.access_token not in repr(token)
    profile = await platform.profile(token)
    assert profile.external_id == channel.id
    assert profile.display_name == "My Channel"
    assert profile.extra["uploads_playlist"] == channel.uploads_playlist
    assert profile.followers == 1000


async def test_wrong_verifier_is_refused(google, make_platform):
    google.add_channel()
    platform = make_platform()
    code = await _consent(google, platform, secrets.token_urlsafe(48))
    with pytest.raises(NeedsRelink):
        await platform.exchange_code(code=code, code_verifier="x" * 48, redirect_uri=REDIRECT)


async def test_refresh_keeps_or_rotates_refresh_token_and_invalid_grant(google, make_platform):
    channel = google.add_channel()
    platform = make_platform()
    raw = google.issue_tokens(channel.id)
    token = TokenSet(access_token=raw["access_token"], refresh_token=raw["refresh_token"])
    fresh = await platform.refresh(token)
    assert fresh.access_token != token.access_token
    assert fresh.refresh_token == token.refresh_token  # Google omitted it: keep ours
    google.rotate_refresh_tokens = True
    rotated = await platform.refresh(fresh)
    assert rotated.refresh_token != fresh.refresh_token
    with pytest.raises(NeedsRelink) as info:
        await platform.refresh(fresh)  # the rotated-away refresh token is dead now
    assert info.value.reason == "invalid_grant"
    assert fresh.refresh_token not in str(info.value)
    assert google.refresh_count == 3


async def test_revoke_hits_the_revoke_endpoint(google, make_platform):
    channel = google.add_channel()
    raw = google.issue_tokens(channel.id)
    platform = make_platform()
    await platform.revoke(
        TokenSet(access_token=raw["access_token"], refresh_token=raw["refresh_token"])
    )
    assert google.revoked == [raw["refresh_token"]]
    # Revoking again (already gone) is not an error.
    await platform.revoke(
        TokenSet(access_token=raw["access_token"], refresh_token=raw["refresh_token"])
    )
