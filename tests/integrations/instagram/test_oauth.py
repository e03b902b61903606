"""Instagram Login: consent URL, code -> short-lived -> long-lived token, refresh, profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.base import SocialPlatform, TokenSet
from integrations.errors import InvalidRequest, NeedsRelink
from tests.integrations.instagram.conftest import IG, REDIRECT


async def test_platform_satisfies_the_protocol(ig: IG) -> None:
    assert isinstance(ig.platform, SocialPlatform)
    assert ig.platform.capabilities.name == "instagram"
    assert ig.platform.capabilities.quota.cost("upload") == {"publishes": 1, "calls": 4}


async def test_authorization_url_has_instagram_login_parameters(ig: IG) -> None:
    url = ig.platform.authorization_url(
        state="st4te", code_verifier="unused", redirect_uri=REDIRECT
    )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ig.base}/oauth/authorize"
    assert query["client_id"] == [ig.fake.client_id]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["response_type"] == ["code"]
    assert query["state"] == ["st4te"]
    assert query["scope"] == [
        "instagram_business_basic,instagram_business_content_publish,"
        "instagram_business_manage_insights"
    ]
    assert ig.fake.client_secret not in url


async def test_code_exchange_returns_a_long_lived_token(ig: IG) -> None:
    code = ig.fake.issue_code(ig.user, REDIRECT)
    before = datetime.now(UTC)
    # Instagram appends "#_" to the redirect; it must not reach the token endpoint.
    token = await ig.platform.exchange_code(
        code=code + "#_", code_verifier="x", redirect_uri=REDIRECT
    )

    record = ig.fake.tokens[token.access_token]
    assert record.kind == "long" and record.user_id == ig.user.user_id
    assert token.refresh_token is None
    assert token.expires_at is not None
    assert before + timedelta(days=59) < token.expires_at < before + timedelta(days=61)
    assert "instagram_business_content_publish" in token.scopes
    assert token.extra == {"user_id": ig.user.user_id}

    (form,) = [c.params for c in ig.fake.calls_to("POST", "/oauth/access_token")]
    assert form["code"] == code and form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == REDIRECT
    (exchange,) = [c.params for c in ig.fake.calls_to("GET", "/access_token")]
    assert exchange["grant_type"] == "ig_exchange_token"
    assert ig.fake.tokens[exchange["access_token"]].kind == "short"


async def test_used_or_wrong_code_is_a_clear_invalid_request(ig: IG) -> None:
    code = ig.fake.issue_code(ig.user, REDIRECT)
    await ig.platform.exchange_code(code=code, code_verifier="x", redirect_uri=REDIRECT)
    with pytest.raises(InvalidRequest) as info:
        await ig.platform.exchange_code(code=code, code_verifier="x", redirect_uri=REDIRECT)
    assert info.value.reason == "invalid_code"
    assert "link" in str(info.value).lower()
    assert code not in str(info.value) and ig.fake.client_secret not in str(info.value)


async def test_refresh_returns_a_new_long_lived_token_keeping_scopes(ig: IG) -> None:
    old = TokenSet(
        access_token=ig.token.access_token,
        expires_at=datetime.now(UTC) + timedelta(days=3),
        scopes=("instagram_business_basic", "instagram_business_manage_insights"),
        extra={"user_id": ig.user.user_id},
    )
    new = await ig.platform.refresh(old)
    assert new.access_token != old.access_token
    assert ig.fake.tokens[new.access_token].kind == "long"
    assert new.scopes == old.scopes and new.extra == old.extra
    assert new.expires_at is not None and new.expires_at > datetime.now(UTC) + timedelta(days=59)
    (call,) = ig.fake.calls_to("GET", "/refresh_access_token")
    assert call.params["grant_type"] == "ig_refresh_token"


async def test_refresh_of_an_expired_token_needs_relink(ig: IG) -> None:
    ig.fake.expire(ig.token.access_token)
    with pytest.raises(NeedsRelink) as info:
        await ig.platform.refresh(ig.token)
    assert info.value.reason == "graph_190_463"
    assert ig.token.access_token not in str(info.value)


async def test_refresh_past_local_expiry_needs_relink_without_calling(ig: IG) -> None:
    stale = TokenSet(access_token="IGAAstale", expires_at=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(NeedsRelink):
        await ig.platform.refresh(stale)
    assert ig.fake.calls == []


async def test_profile_maps_the_professional_account(ig: IG) -> None:
    profile = await ig.platform.profile(ig.token)
    assert profile.external_id == ig.user.user_id
    assert profile.handle == "studio.fern"
    assert profile.display_name == "Fern Studio"
    assert profile.followers == 4200
    assert profile.url == "https://www.instagram.com/studio.fern/"
    assert profile.extra["id"] == ig.user.app_scoped_id
    (call,) = ig.fake.calls_to("GET", "me")
    # The token travels in the Authorization header, not in the URL.
    assert "access_token" not in call.params
    assert call.auth == f"Bearer {ig.token.access_token}"


async def test_revoke_is_a_no_op_without_network(ig: IG) -> None:
    await ig.platform.revoke(ig.token)
    assert ig.fake.calls == []
