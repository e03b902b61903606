"""Login Kit OAuth v2 against the fake: consent URL, code exchange, PKCE, refresh rotation, revoke."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from integrations.base import SocialPlatform, TokenSet
from integrations.errors import AuthError, InvalidRequest, NeedsRelink
from integrations.tiktok.platform import TikTokPlatform
from tests.fakes.tiktok import AUTHORIZE, REVOKE, TOKEN
from tests.integrations.tiktok.conftest import REDIRECT, TT


async def _consent(platform: TikTokPlatform, verifier: str, state: str = "st-1") -> str:
    """Follow the consent URL the way a browser would; the code TikTok redirects back with."""
    url = platform.authorization_url(state=state, code_verifier=verifier, redirect_uri=REDIRECT)
    async with httpx.AsyncClient() as browser:
        response = await browser.get(url)
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == [state]
    return query["code"][0]


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_authorization_url_uses_client_key_and_comma_separated_scopes(tt: TT) -> None:
    platform = tt.platform
    assert isinstance(platform, SocialPlatform)
    url = platform.authorization_url(state="abc", code_verifier="v" * 64, redirect_uri=REDIRECT)
    assert url.startswith(f"{tt.base}{AUTHORIZE}?")
    query = _query(url)
    assert query["client_key"] == tt.fake.client_key
    assert "client_id" not in query
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == REDIRECT
    assert query["state"] == "abc"
    assert query["scope"].split(",") == list(platform.scopes)
    # Follower and like totals need user.info.stats, the username user.info.profile;
    # direct posts need video.publish, and without the inbox video.upload is not asked for.
    assert {"user.info.basic", "user.info.profile", "user.info.stats", "video.list"} <= set(
        platform.scopes
    )
    assert "video.publish" in platform.scopes and "video.upload" not in platform.scopes
    # A web app has no PKCE at TikTok.
    assert "code_challenge" not in query and "code_challenge_method" not in query


async def test_inbox_settings_ask_for_the_upload_scope(tt: TT) -> None:
    assert "video.upload" in tt.build(tiktok_post_mode="inbox").scopes
    assert "video.publish" not in tt.build(tiktok_post_mode="inbox").scopes
    both = tt.build(tiktok_inbox_fallback=True).scopes
    assert "video.upload" in both and "video.publish" in both


async def test_code_exchange_then_profile(tt: TT) -> None:
    code = await _consent(tt.platform, secrets.token_urlsafe(48))
    token = await tt.platform.exchange_code(code=code, code_verifier="x", redirect_uri=REDIRECT)
    assert token.access_token.startswith("act.") and token.refresh_token
    assert token.expires_at is not None
    hours = (token.expires_at - datetime.now(UTC)).total_seconds() / 3600
    assert 23.9 < hours <= 24
    assert token.extra["open_id"] == tt.creator.open_id
    assert datetime.fromisoformat(token.extra["refresh_expires_at"]) > datetime.now(
        UTC
    ) + timedelta(days=364)
    assert set(token.scopes) == set(tt.platform.scopes)
    assert token.access_token not in repr(token) and token.refresh_token not in repr(token)
    profile = await tt.platform.profile(token)
    assert profile.external_id == tt.creator.open_id and profile.handle == "studio.fern"
    form = tt.fake.calls_to(TOKEN)[0].body
    assert form["grant_type"] == "authorization_code" and form["redirect_uri"] == REDIRECT
    assert "code_verifier" not in form  # web apps send none


async def test_a_used_code_is_refused_with_a_link_again_message(tt: TT) -> None:
    code = await _consent(tt.platform, "v")
    await tt.platform.exchange_code(code=code, code_verifier="v", redirect_uri=REDIRECT)
    with pytest.raises(InvalidRequest) as info:
        await tt.platform.exchange_code(code=code, code_verifier="v", redirect_uri=REDIRECT)
    assert "Start linking again" in str(info.value) and info.value.reason == "invalid_grant"


async def test_pkce_for_desktop_apps_uses_a_hex_sha256_challenge(tt: TT) -> None:
    tt.fake.require_pkce = True
    platform = tt.build(tiktok_pkce=True)
    verifier = secrets.token_urlsafe(48)
    query = _query(
        platform.authorization_url(state="s", code_verifier=verifier, redirect_uri=REDIRECT)
    )
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == hashlib.sha256(verifier.encode()).hexdigest()
    code = await _consent(platform, verifier)
    with pytest.raises(InvalidRequest) as info:
        await platform.exchange_code(code=code, code_verifier="wrong" * 10, redirect_uri=REDIRECT)
    assert info.value.reason == "invalid_request"
    code = await _consent(platform, verifier)
    token = await platform.exchange_code(code=code, code_verifier=verifier, redirect_uri=REDIRECT)
    assert token.access_token
    assert tt.fake.calls_to(TOKEN)[-1].body["code_verifier"] == verifier


async def test_refresh_stores_the_rotated_refresh_token_and_the_old_one_needs_relink(
    tt: TT,
) -> None:
    fresh = await tt.platform.refresh(tt.token)
    assert fresh.access_token != tt.token.access_token
    assert fresh.refresh_token and fresh.refresh_token != tt.token.refresh_token
    assert fresh.extra["open_id"] == tt.creator.open_id
    again = await tt.platform.refresh(fresh)  # the new one works
    assert again.refresh_token != fresh.refresh_token
    with pytest.raises(NeedsRelink) as info:
        await tt.platform.refresh(tt.token)  # rotated away: TikTok answers invalid_grant
    assert info.value.reason == "invalid_grant"
    assert "Link the TikTok account again" in str(info.value)
    assert tt.token.refresh_token is not None and tt.token.refresh_token not in str(info.value)
    assert tt.fake.refresh_count == 3


async def test_refresh_keeps_our_refresh_token_when_tiktok_returns_the_same(tt: TT) -> None:
    tt.fake.rotate_refresh_tokens = False
    fresh = await tt.platform.refresh(tt.token)
    assert fresh.refresh_token == tt.token.refresh_token
    assert (await tt.platform.refresh(fresh)).access_token != fresh.access_token


async def test_invalid_grant_in_a_200_answer_still_needs_relink(tt: TT) -> None:
    tt.fake.errors_in_200 = True
    stale = TokenSet(access_token="act.x", refresh_token="rft.gone")
    with pytest.raises(NeedsRelink):
        await tt.platform.refresh(stale)


async def test_no_refresh_token_needs_relink_without_a_call(tt: TT) -> None:
    with pytest.raises(NeedsRelink):
        await tt.platform.refresh(TokenSet(access_token="act.x"))
    assert not tt.fake.calls_to(TOKEN)


async def test_a_refresh_token_past_its_365_days_needs_relink_without_a_call(tt: TT) -> None:
    old = dataclasses.replace(
        tt.token,
        extra={
            **tt.token.extra,
            "refresh_expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        },
    )
    with pytest.raises(NeedsRelink) as info:
        await tt.platform.refresh(old)
    assert info.value.reason == "refresh_token_expired"
    assert not tt.fake.calls_to(TOKEN)


async def test_wrong_client_secret_is_an_auth_error_naming_the_settings(tt: TT) -> None:
    platform = tt.build(tiktok_client_secret="not-the-secret")
    with pytest.raises(AuthError) as info:
        await platform.refresh(tt.token)
    assert info.value.reason == "invalid_client"
    assert "TIKTOK_CLIENT_SECRET" in str(info.value) and "not-the-secret" not in str(info.value)


async def test_revoke_is_form_encoded_and_idempotent(tt: TT) -> None:
    await tt.platform.revoke(tt.token)
    assert tt.fake.revoked == [tt.creator.open_id]
    form = tt.fake.calls_to(REVOKE)[0].body
    assert set(form) == {"client_key", "client_secret", "token"}
    await tt.platform.revoke(tt.token)  # already gone: not an error
    assert tt.fake.revoked == [tt.creator.open_id]
    with pytest.raises(NeedsRelink):
        await tt.platform.refresh(tt.token)  # the grant is dead


async def test_revoke_with_a_lapsed_access_token_renews_it_first(tt: TT) -> None:
    raw = tt.fake.issue_tokens(tt.creator, expires_in=-10)
    lapsed = TokenSet(
        access_token=raw["access_token"],
        refresh_token=raw["refresh_token"],
        expires_at=datetime.now(UTC) - timedelta(seconds=10),
    )
    await tt.platform.revoke(lapsed)
    assert tt.fake.revoked == [tt.creator.open_id]
    assert tt.fake.refresh_count == 1
