"""The chat sign-ins' pure conversions, and their clients against the strict fakes."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.signin import (
    SignInFailed,
    SlackSignIn,
    discord_identity,
    jwt_claims,
    slack_authorize_url,
    slack_identity,
)
from tests.fakes.slack import FakeSlack, id_token

CLIENT = "1111.2222"


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "https://slack.com",
        "aud": CLIENT,
        "exp": time.time() + 60,
        "nonce": "n-1",
        "https://slack.com/user_id": "U1",
        "https://slack.com/team_id": "T1",
    }
    claims.update(overrides)
    return claims


def test_slack_claims_are_read_and_checked() -> None:
    now = time.time()
    who = slack_identity(jwt_claims(id_token(_claims())), client_id=CLIENT, now=now)
    assert (who.user_id, who.workspace_id, who.nonce) == ("U1", "T1", "n-1")
    for bad in (
        _claims(aud="someone-else"),
        _claims(iss="https://evil.example"),
        _claims(exp=now - 1),
        _claims(nonce=None),
        _claims(**{"https://slack.com/team_id": None}),
    ):
        with pytest.raises(SignInFailed):
            slack_identity(bad, client_id=CLIENT, now=now)
    with pytest.raises(SignInFailed):
        jwt_claims("not-a-jwt")


def test_slack_authorize_url_asks_for_openid_in_the_links_workspace() -> None:
    url = slack_authorize_url(
        authorize_url="https://slack.com/openid/connect/authorize",
        client_id=CLIENT,
        redirect_uri="https://bot.example.com/oauth/identity/slack/callback",
        state="s",
        nonce="n",
        team="T1",
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {
        "response_type": "code",
        "scope": "openid",
        "client_id": CLIENT,
        "redirect_uri": "https://bot.example.com/oauth/identity/slack/callback",
        "state": "s",
        "nonce": "n",
        "team": "T1",
    }


def test_discord_user_must_have_an_id() -> None:
    assert discord_identity({"id": "123", "username": "ada"}).user_id == "123"
    with pytest.raises(SignInFailed):
        discord_identity({"username": "ada"})


async def test_the_slack_fake_is_strict_and_a_code_counts_once(fake_slack: FakeSlack) -> None:
    fake_slack.signin_as = ("U1", "T1")

    def client(secret: str, http: httpx.AsyncClient) -> SlackSignIn:
        return SlackSignIn(
            client_id=fake_slack.client_id,
            client_secret=secret,
            authorize_url=f"{fake_slack.base_url}/openid/connect/authorize",
            api_base=fake_slack.api_base,
            public_base_url="https://bot.example.com",
            http=http,
        )

    async with httpx.AsyncClient() as http:
        good = client(fake_slack.client_secret, http)
        answer = await http.get(
            good.authorize_url(state="s", nonce="n", workspace_external_id="T1")
        )
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        with pytest.raises(SignInFailed):
            await client("wrong-secret", http).identify(code)
        who = await good.identify(code)
        assert (who.user_id, who.workspace_id, who.nonce) == ("U1", "T1", "n")
        with pytest.raises(SignInFailed):
            await good.identify(code)
