"""Chat sign-ins that prove who opened an account link: Sign in with Slack, Discord OAuth2.

Each is an authorization-code flow against the chat platform itself, asking for
the least it offers (Slack: `openid`; Discord: `identify`), used once to learn
who is in the browser; no token is kept.

Slack's answer is read from the id_token that `openid.connect.token` returns. It
comes straight from Slack's token endpoint over TLS, in answer to our own client
authentication, so its claims are taken without checking the JWS signature
(OpenID Connect Core 3.1.3.7 allows this for an id_token received directly from
the token endpoint); its issuer, audience, expiry and nonce are checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

log = logging.getLogger(__name__)

SLACK_ISSUER = "https://slack.com"
SLACK_USER_CLAIM = "https://slack.com/user_id"
SLACK_TEAM_CLAIM = "https://slack.com/team_id"


class SignInFailed(Exception):
    """The sign-in did not complete (refused, unreachable, or an unreadable answer).

    `str(err)` is safe to show: it never carries a code, token or claim value.
    """


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who signed in: the chat's user id, the workspace where the chat has one, the nonce."""

    user_id: str
    workspace_id: str | None
    nonce: str | None


class SignIn(Protocol):
    """One chat's sign-in, for links asked for on that front-end."""

    frontend: str
    label: str  # "Sign in with Slack", for the start page

    def authorize_url(self, *, state: str, nonce: str, workspace_external_id: str) -> str:
        """Where the browser signs in; it comes back to `/oauth/identity/{frontend}/callback`."""

    async def identify(self, code: str) -> SignedIn:
        """Exchange the code for who signed in (SignInFailed if that cannot be learned)."""


def identity_redirect_uri(public_base_url: str, frontend: str) -> str:
    return f"{public_base_url.rstrip('/')}/oauth/identity/{frontend}/callback"


def slack_authorize_url(
    *, authorize_url: str, client_id: str, redirect_uri: str, state: str, nonce: str, team: str
) -> str:
    """Sign in with Slack's authorize URL, limited to the link's workspace (`team`)."""
    query = {
        "response_type": "code",
        "scope": "openid",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "nonce": nonce,
        "team": team,
    }
    return f"{authorize_url}?{urlencode(query)}"


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT, unverified (see the module docstring for why)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise SignInFailed("Slack's answer could not be read.")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        raise SignInFailed("Slack's answer could not be read.") from None
    if not isinstance(claims, dict):
        raise SignInFailed("Slack's answer could not be read.")
    return claims


def slack_identity(claims: Mapping[str, Any], *, client_id: str, now: float) -> SignedIn:
    """Who signed in, from an id_token's claims, after checking issuer, audience and expiry."""
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    user, team, nonce = (
        claims.get(SLACK_USER_CLAIM),
        claims.get(SLACK_TEAM_CLAIM),
        claims.get("nonce"),
    )
    expires = claims.get("exp")
    if (
        claims.get("iss") != SLACK_ISSUER
        or client_id not in audiences
        or not isinstance(expires, int | float)
        or expires <= now
    ):
        raise SignInFailed("Slack's sign-in answer was not meant for this bot, or is too old.")
    if not (isinstance(user, str) and isinstance(team, str) and isinstance(nonce, str)):
        raise SignInFailed("Slack's sign-in answer did not say who signed in.")
    return SignedIn(user_id=user, workspace_id=team, nonce=nonce)


def discord_authorize_url(
    *, authorize_url: str, client_id: str, redirect_uri: str, state: str
) -> str:
    """Discord's OAuth2 authorize URL for the `identify` scope only."""
    query = {
        "response_type": "code",
        "scope": "identify",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "prompt": "none",  # skip the screen for someone who already allowed `identify`
    }
    return f"{authorize_url}?{urlencode(query)}"


def discord_identity(user: Mapping[str, Any]) -> SignedIn:
    """Who signed in, from `GET /users/@me` (Discord user ids are global: no workspace)."""
    user_id = user.get("id")
    if not isinstance(user_id, str) or not user_id.isdigit():
        raise SignInFailed("Discord's answer did not say who signed in.")
    return SignedIn(user_id=user_id, workspace_id=None, nonce=None)


def _json(response: httpx.Response, who: str) -> dict[str, Any]:
    if response.status_code != 200:
        log.warning("sign-in refused", extra={"chat": who, "status": response.status_code})
        raise SignInFailed(f"{who} refused the sign-in; nothing was linked.")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SignInFailed(f"{who}'s answer could not be read.")
    return body


class _ChatOAuthClient:
    """What both sign-ins are: the app's OAuth client at one chat (its credentials,
    authorize page, API base and our callback). They differ only in what they ask for
    and in how the answer says who signed in."""

    frontend: str  # declared by each sign-in; names its callback

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authorize_url: str,
        api_base: str,
        public_base_url: str,
        http: httpx.AsyncClient,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._authorize_url = authorize_url
        self._api_base = api_base.rstrip("/")
        self._redirect_uri = identity_redirect_uri(public_base_url, self.frontend)
        self._http = http


class SlackSignIn(_ChatOAuthClient):
    """Sign in with Slack (OpenID Connect), with the app's SLACK_CLIENT_ID / SECRET."""

    frontend = "slack"
    label = "Sign in with Slack"

    def authorize_url(self, *, state: str, nonce: str, workspace_external_id: str) -> str:
        return slack_authorize_url(
            authorize_url=self._authorize_url,
            client_id=self._client_id,
            redirect_uri=self._redirect_uri,
            state=state,
            nonce=nonce,
            team=workspace_external_id,
        )

    async def identify(self, code: str) -> SignedIn:
        try:
            response = await self._http.post(
                f"{self._api_base}/openid.connect.token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self._redirect_uri,
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
            )
        except httpx.HTTPError:
            raise SignInFailed("Slack could not be reached; try again in a moment.") from None
        body = _json(response, "Slack")
        token = body.get("id_token")
        if body.get("ok") is not True or not isinstance(token, str):
            log.warning("sign in with slack refused", extra={"error": str(body.get("error"))})
            raise SignInFailed("Slack refused the sign-in; nothing was linked.")
        return slack_identity(jwt_claims(token), client_id=self._client_id, now=time.time())


class DiscordSignIn(_ChatOAuthClient):
    """Discord OAuth2 with the `identify` scope, with DISCORD_CLIENT_ID / SECRET."""

    frontend = "discord"
    label = "Sign in with Discord"

    def authorize_url(self, *, state: str, nonce: str, workspace_external_id: str) -> str:
        # Discord's OAuth2 has no nonce; the state and the browser cookie bind the answer.
        return discord_authorize_url(
            authorize_url=self._authorize_url,
            client_id=self._client_id,
            redirect_uri=self._redirect_uri,
            state=state,
        )

    async def identify(self, code: str) -> SignedIn:
        try:
            response = await self._http.post(
                f"{self._api_base}/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self._redirect_uri,
                },
                auth=(self._client_id, self._client_secret),
            )
            grant = _json(response, "Discord")
            access = grant.get("access_token")
            if not isinstance(access, str):
                raise SignInFailed("Discord's answer could not be read.")
            me = await self._http.get(
                f"{self._api_base}/users/@me", headers={"Authorization": f"Bearer {access}"}
            )
        except httpx.HTTPError:
            raise SignInFailed("Discord could not be reached; try again in a moment.") from None
        return discord_identity(_json(me, "Discord"))
