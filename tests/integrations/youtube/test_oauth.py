"""Google OAuth against the fake, through YouTube's production client: PKCE, offline
access, refresh, revoke, and token-endpoint failures."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from integrations.base import SocialPlatform, TokenSet
from integrations.errors import AuthError, NeedsRelink, PlatformUnavailable
from integrations.http import make_client
from integrations.youtube import SCOPES
from tests.fakes.google import FakeGoogle, youtube_config
from tests.fakes.google_env import make_youtube

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


async def test_token_calls_share_youtube_transport_and_are_not_replayed(
    google, make_platform, guards
):
    channel = google.add_channel()
    raw = google.issue_tokens(channel.id)
    token = TokenSet(access_token=raw["access_token"], refresh_token=raw["refresh_token"])
    google.token_failures = [503]
    with pytest.raises(PlatformUnavailable) as info:
        await make_platform().refresh(token)
    assert info.value.status == 503
    assert raw["refresh_token"] not in str(info.value)
    # A refresh may rotate the refresh token, so a lost answer is not replayed...
    assert len(google.calls_to("/token")) == 1
    # ...and the failure counts on YouTube's breaker like any other YouTube call.
    assert guards.guard("youtube").breaker.failures == 1
    fresh = await make_platform().refresh(token)
    assert fresh.access_token != token.access_token
    assert guards.guard("youtube").breaker.failures == 0


async def test_a_refused_client_is_an_auth_error_not_a_relink(google, make_platform):
    channel = google.add_channel()
    raw = google.issue_tokens(channel.id)
    platform = make_platform(client_secret="wrong-secret")
    with pytest.raises(AuthError) as info:
        await platform.refresh(TokenSet(access_token="x", refresh_token=raw["refresh_token"]))
    assert type(info.value) is AuthError and info.value.reason == "invalid_client"
    assert "wrong-secret" not in str(info.value)


@pytest.mark.parametrize("body", [b"<html>sign in</html>", b'{"token_type": "Bearer"}'])
async def test_a_non_token_answer_is_platform_unavailable(google, guards, body):
    async def token_endpoint(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    transport = httpx.ASGITransport(app=token_endpoint)
    async with make_client(platform="youtube", guards=guards, transport=transport) as http:
        platform = make_youtube(youtube_config("http://google.test", google), http)
        with pytest.raises(PlatformUnavailable) as info:
            await platform.refresh(TokenSet(access_token="x", refresh_token="1//r"))
    assert info.value.reason == "bad_response"
