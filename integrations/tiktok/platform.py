"""TikTokPlatform: the SocialPlatform for TikTok (Login Kit, Content Posting, Display API v2).

- Consent at www.tiktok.com/v2/auth/authorize/ with `client_key` (not client_id) and a
  comma-separated `scope`; code and refresh token exchanged form-encoded at
  /v2/oauth/token/; grants revoked at /v2/oauth/revoke/ (by access token).
- Profile and account totals from GET /v2/user/info/ (`data.user`); recent posts
  from POST /v2/video/list/ (cursor pages of at most 20); post figures from POST
  /v2/video/query/ (at most 20 ids a call). TikTok has no per-day analytics here:
  account figures are lifetime totals as of the call, reported for that one day.
- Posting in `integrations.tiktok.upload`.

Every call goes through the injected `httpx.AsyncClient`; see `plugin.py` for the
figures and where they come from.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from integrations.base import (
    AccountMetrics,
    AccountProfile,
    ByteSource,
    PostMetrics,
    PostSummary,
    ProgressCallback,
    TokenSet,
    UploadCheckpoint,
    UploadRequest,
    UploadResult,
    with_engagement_rate,
)
from integrations.capabilities import PlatformCapabilities
from integrations.errors import (
    InvalidRequest,
    NeedsRelink,
    PlatformUnavailable,
    TokenExpired,
)
from integrations.tiktok._errors import PLATFORM
from integrations.tiktok.api import TikTokApi
from integrations.tiktok.convert import (
    LIST_FIELDS,
    PROFILE_FIELDS,
    STATS_FIELDS,
    VIDEO_FIELDS,
    account_figures,
    post_metrics_from,
    profile_from,
    summary_from,
    token_set_from,
    user_fields,
)
from integrations.tiktok.plugin import CHUNK_BYTES
from integrations.tiktok.upload import Mode, PublishConfig, Publisher

log = logging.getLogger(__name__)

READ_SCOPES: tuple[str, ...] = (
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.list",
)
USER_INFO = "/v2/user/info/"
VIDEO_LIST = "/v2/video/list/"
VIDEO_QUERY = "/v2/video/query/"
MAX_PAGE = 20  # /v2/video/list/ max_count


@dataclass(frozen=True, slots=True)
class TikTokConfig:
    """Everything the integration needs from settings (every URL overridable for fakes)."""

    client_key: str
    client_secret: str
    auth_url: str = "https://www.tiktok.com/v2/auth/authorize/"
    token_url: str = "https://open.tiktokapis.com/v2/oauth/token/"
    revoke_url: str = "https://open.tiktokapis.com/v2/oauth/revoke/"
    api_base: str = "https://open.tiktokapis.com"
    pkce: bool = False
    post_mode: Mode = "direct"
    inbox_fallback: bool = False
    pull_from_url: bool = False
    chunk_bytes: int = CHUNK_BYTES
    poll_seconds: float = 5.0
    publish_timeout_seconds: float = 600.0
    allow_comments: bool = False
    allow_duets: bool = False
    allow_stitches: bool = False

    def __repr__(self) -> str:  # the client secret stays out of reprs
        return f"TikTokConfig(client_key={self.client_key!r}, api_base={self.api_base!r})"


def scopes_for(config: TikTokConfig) -> tuple[str, ...]:
    """The scopes to ask for: reads, plus the posting scope(s) the mode can use."""
    posting: list[str] = []
    if config.post_mode == "direct":
        posting.append("video.publish")
    if config.post_mode == "inbox" or config.inbox_fallback:
        posting.append("video.upload")
    return (*READ_SCOPES, *posting)


def pkce_challenge(verifier: str) -> str:
    """TikTok's desktop PKCE challenge: the hex SHA-256 of the verifier (not base64url)."""
    return hashlib.sha256(verifier.encode()).hexdigest()


class TikTokPlatform:
    """SocialPlatform implementation for TikTok."""

    def __init__(
        self,
        *,
        config: TikTokConfig,
        http: httpx.AsyncClient,
        capabilities: PlatformCapabilities,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._config = config
        self.capabilities = capabilities
        self.scopes: tuple[str, ...] = scopes_for(config)
        self._api = TikTokApi(http, api_base=config.api_base)
        self._now = clock or (lambda: datetime.now(UTC))
        self.publisher = Publisher(
            api=self._api,
            http=http,
            config=PublishConfig(
                post_mode=config.post_mode,
                inbox_fallback=config.inbox_fallback,
                pull_from_url=config.pull_from_url,
                chunk_bytes=config.chunk_bytes,
                poll_seconds=config.poll_seconds,
                publish_timeout_seconds=config.publish_timeout_seconds,
                allow_comments=config.allow_comments,
                allow_duets=config.allow_duets,
                allow_stitches=config.allow_stitches,
            ),
        )

    def __repr__(self) -> str:  # no secret in reprs
        return f"TikTokPlatform(client_key={self._config.client_key!r})"

    # --- OAuth ------------------------------------------------------------------------

    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        """TikTok's consent URL. With TIKTOK_PKCE (desktop apps) it carries the verifier's
        hex S256 challenge; a web app has no PKCE and the state check binds the callback."""
        query = {
            "client_key": self._config.client_key,
            "scope": ",".join(self.scopes),
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        if self._config.pkce:
            query["code_challenge"] = pkce_challenge(code_verifier)
            query["code_challenge_method"] = "S256"
        return f"{self._config.auth_url}?{urlencode(query)}"

    def _client(self) -> dict[str, str]:
        return {"client_key": self._config.client_key, "client_secret": self._config.client_secret}

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        fields = {
            **self._client(),
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": redirect_uri,
        }
        if self._config.pkce:
            fields["code_verifier"] = code_verifier
        try:
            raw = await self._api.form(
                self._config.token_url, fields, doing="exchanging the sign-in code"
            )
        except NeedsRelink as exc:  # invalid_grant on a code: it expired or was used
            raise InvalidRequest(
                "TikTok did not accept the sign-in code (it may have expired or been used "
                "already). Start linking again.",
                platform=PLATFORM,
                status=exc.status,
                reason=exc.reason,
            ) from None
        return token_set_from(raw, now=self._now())

    async def refresh(self, token: TokenSet) -> TokenSet:
        """A new access token; the refresh token TikTok returns replaces ours (it may rotate)."""
        if not token.refresh_token or self._refresh_lapsed(token):
            raise NeedsRelink(
                "This TikTok link has expired. Link the TikTok account again.",
                platform=PLATFORM,
                reason="refresh_token_expired" if token.refresh_token else "no_refresh_token",
            )
        raw = await self._api.form(
            self._config.token_url,
            {**self._client(), "grant_type": "refresh_token", "refresh_token": token.refresh_token},
            doing="renewing the TikTok sign-in",
        )
        return token_set_from(raw, now=self._now(), previous=token)

    def _refresh_lapsed(self, token: TokenSet) -> bool:
        """The refresh token's own lifetime (365 days from issue) is over."""
        until = token.extra.get("refresh_expires_at")
        return isinstance(until, str) and datetime.fromisoformat(until) <= self._now()

    async def revoke(self, token: TokenSet) -> None:
        """Revoke the grant. TikTok revokes by access token, so a lapsed one is renewed
        first; a token TikTok no longer knows counts as revoked already."""
        current = token
        if token.expires_at is not None and token.expires_at <= self._now():
            try:
                current = await self.refresh(token)
            except NeedsRelink:
                return  # the grant is dead already
        try:
            await self._api.form(
                self._config.revoke_url,
                {**self._client(), "token": current.access_token},
                doing="revoking access",
            )
        except (TokenExpired, InvalidRequest) as exc:
            log.info("tiktok revoke: token already invalid", extra={"reason": exc.reason})

    # --- reading ----------------------------------------------------------------------

    async def _user(self, token: TokenSet, wanted: Sequence[str], doing: str) -> dict[str, Any]:
        fields = user_fields(wanted, token.scopes)
        data = await self._api.call(
            "GET",
            USER_INFO,
            token=token.access_token,
            doing=doing,
            idempotent=True,
            params={"fields": ",".join(fields)},
        )
        user = data.get("user")
        if not isinstance(user, dict):
            raise PlatformUnavailable(
                f"TikTok's answer had no user while {doing}; try again later.",
                platform=PLATFORM,
                reason="bad_response",
            )
        return user

    async def profile(self, token: TokenSet) -> AccountProfile:
        return profile_from(await self._user(token, PROFILE_FIELDS, "reading the TikTok profile"))

    async def recent_posts(
        self, token: TokenSet, account: AccountProfile, *, limit: int = 50
    ) -> list[PostSummary]:
        """The account's newest public videos, newest first, following the cursor."""
        posts: list[PostSummary] = []
        cursor: int | None = None
        while len(posts) < limit:
            body: dict[str, Any] = {"max_count": min(MAX_PAGE, limit - len(posts))}
            if cursor is not None:
                body["cursor"] = cursor
            data = await self._api.call(
                "POST",
                VIDEO_LIST,
                token=token.access_token,
                doing="listing recent videos",
                idempotent=True,
                params={"fields": LIST_FIELDS},
                body=body,
            )
            videos = data.get("videos")
            for video in videos if isinstance(videos, list) else []:
                summary = summary_from(video) if isinstance(video, dict) else None
                if summary is not None:
                    posts.append(summary)
            next_cursor = data.get("cursor")
            # TikTok may return short pages while has_more holds; a cursor that does not
            # move would loop forever.
            if data.get("has_more") is not True or not isinstance(next_cursor, int):
                break
            if next_cursor == cursor:
                break
            cursor = next_cursor
        return posts[:limit]

    async def post_metrics(self, token: TokenSet, post_ids: Sequence[str]) -> list[PostMetrics]:
        """Counters for many videos, 20 ids a call, in the order asked. Ids TikTok does not
        return (deleted, private, or a draft's publish id) are left out."""
        ids = [i for i in dict.fromkeys(str(p) for p in post_ids) if i.isdigit()]
        per_call = self.capabilities.metrics.max_ids_per_call
        found: dict[str, PostMetrics] = {}
        for start in range(0, len(ids), per_call):
            data = await self._api.call(
                "POST",
                VIDEO_QUERY,
                token=token.access_token,
                doing="reading video statistics",
                idempotent=True,
                params={"fields": VIDEO_FIELDS},
                body={"filters": {"video_ids": ids[start : start + per_call]}},
            )
            as_of = self._now()
            videos = data.get("videos")
            for video in videos if isinstance(videos, list) else []:
                metrics = post_metrics_from(video, as_of=as_of) if isinstance(video, dict) else None
                if metrics is not None:
                    found[metrics.post_id] = metrics
        return [found[i] for i in ids if i in found]

    async def account_metrics(
        self, token: TokenSet, account: AccountProfile, *, start: date, end: date
    ) -> AccountMetrics:
        """Lifetime totals (followers, likes received) as of now: TikTok's Display API has
        no figures per day or per period, so the report covers today only."""
        if end < start:
            raise InvalidRequest("The period ends before it starts.", platform=PLATFORM)
        user = await self._user(token, STATS_FIELDS, "reading the TikTok account totals")
        as_of = self._now()
        return AccountMetrics(
            platform=PLATFORM,
            account_id=account.external_id,
            start=as_of.date(),
            end=as_of.date(),
            as_of=as_of,
            figures=with_engagement_rate(account_figures(user)),
        )

    # --- posting ----------------------------------------------------------------------

    async def upload(
        self,
        token: TokenSet,
        source: ByteSource,
        request: UploadRequest,
        *,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Post (or send to the inbox) the video, resuming from the checkpoint."""
        return await self.publisher.run(
            token,
            source,
            request,
            allowed_privacy=self.capabilities.privacy.values,
            caption_rules=self.capabilities.caption_rules,
            checkpoint=checkpoint,
            progress=progress,
        )
