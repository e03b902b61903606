"""XPlatform: the SocialPlatform for X (API v2, OAuth 2.0 user context with PKCE).

OAuth calls are plain form posts (HTTP Basic client auth, as X asks of confidential
clients); everything goes through the injected `httpx.AsyncClient`. API calls are
paced by `RatePacer` from X's rate-limit headers, uploads go through
`MediaUploader`, and JSON is turned into the normalized model by `metrics`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from integrations.base import (
    AccountMetrics,
    AccountProfile,
    ByteSource,
    Metric,
    PostMetrics,
    PostSummary,
    ProgressCallback,
    TokenSet,
    UploadCheckpoint,
    UploadRequest,
    UploadResult,
)
from integrations.capabilities import PlatformCapabilities
from integrations.errors import (
    IntegrationError,
    InvalidRequest,
    NeedsRelink,
    PermissionDenied,
    PlatformUnavailable,
)
from integrations.text import compose_post_text
from integrations.x._errors import PLATFORM, oauth_error, unavailable
from integrations.x.api import XApi
from integrations.x.metrics import (
    PRIVATE_FIELDS,
    field_denied_ids,
    parse_time,
    post_metrics_from,
    post_url,
    private_metrics_allowed,
    sum_figures,
    title_of,
)
from integrations.x.pacing import Clock, RatePacer, pacing_key
from integrations.x.upload import MediaUploader, UploadState

log = logging.getLogger(__name__)

SCOPES: tuple[str, ...] = (
    "tweet.read",
    "tweet.write",
    "users.read",
    "media.write",
    "offline.access",
)
PUBLIC_FIELDS = "public_metrics,created_at,text"
# A post this close to 30 days old is read without private metrics: X would refuse them.
PRIVATE_METRICS_MARGIN = timedelta(hours=1)
TOP_POSTS = 10
MAX_PERIOD_PAGES = 10  # account figures read at most this many timeline pages


@dataclass(frozen=True, slots=True)
class XConfig:
    """Everything the integration needs from settings (all URLs overridable for fakes)."""

    client_id: str
    client_secret: str
    auth_url: str = "https://x.com/i/oauth2/authorize"
    token_url: str = "https://api.x.com/2/oauth2/token"
    revoke_url: str = "https://api.x.com/2/oauth2/revoke"
    api_base: str = "https://api.x.com"
    segment_bytes: int = 4 * 1024 * 1024
    processing_timeout_seconds: float = 600.0
    rate_limit_max_wait_seconds: float = 10.0

    def __repr__(self) -> str:  # the client secret stays out of reprs
        return f"XConfig(client_id={self.client_id!r}, api_base={self.api_base!r})"


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_set(raw: dict[str, Any], *, now: datetime, previous: TokenSet | None = None) -> TokenSet:
    """A TokenSet from X's token answer.

    X rotates refresh tokens and each is single use: the returned one replaces ours.
    """
    access = raw.get("access_token")
    if not isinstance(access, str) or not access:
        raise PlatformUnavailable(
            "X's sign-in answer had no access token; try again.",
            platform=PLATFORM,
            reason="bad_response",
        )
    expires_in = raw.get("expires_in")
    scope = raw.get("scope")
    refresh = raw.get("refresh_token")
    return TokenSet(
        access_token=access,
        refresh_token=refresh
        if isinstance(refresh, str) and refresh
        else (previous.refresh_token if previous else None),
        expires_at=now + timedelta(seconds=float(expires_in))
        if isinstance(expires_in, int | float)
        else None,
        scopes=tuple(scope.split())
        if isinstance(scope, str)
        else (previous.scopes if previous else ()),
        token_type="Bearer",  # noqa: S106 (a scheme name)
    )


class XPlatform:
    """SocialPlatform implementation for X.

    `clock` (wall time and sleep) is shared by the pacer and the uploader, so a test can
    swap in a fake one after building the platform through its plug-in.
    """

    scopes: Sequence[str] = SCOPES

    def __init__(
        self,
        *,
        config: XConfig,
        http: httpx.AsyncClient,
        capabilities: PlatformCapabilities,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._http = http
        self.capabilities = capabilities
        self.clock = clock or Clock()
        self.pacer = RatePacer(clock=self.clock, max_wait=config.rate_limit_max_wait_seconds)
        self._api = XApi(http, api_base=config.api_base, pacer=self.pacer)
        self.uploader = MediaUploader(
            self._api,
            clock=self.clock,
            segment_bytes=config.segment_bytes,
            processing_timeout=config.processing_timeout_seconds,
        )

    def __repr__(self) -> str:  # no secret in reprs
        return f"XPlatform(client_id={self._config.client_id!r})"

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)

    # --- OAuth ------------------------------------------------------------------------

    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._config.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(SCOPES),
                "state": state,
                "code_challenge": pkce_challenge(code_verifier),
                "code_challenge_method": "S256",
            },
            quote_via=quote,
        )
        return f"{self._config.auth_url}?{query}"

    def _basic(self) -> str:
        pair = f"{self._config.client_id}:{self._config.client_secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    async def _oauth_post(
        self, url: str, form: dict[str, str], *, doing: str, refreshing: bool = False
    ) -> dict[str, Any]:
        key = pacing_key(f"POST {url}", None)
        await self.pacer.before(key)
        try:
            response = await self._http.post(
                url,
                data=form,
                headers={"Authorization": self._basic()},
                # A code or a refresh token works once: never send one twice.
                extensions={"idempotent": False},
            )
        except httpx.TransportError as exc:
            raise unavailable(exc, doing=doing) from None
        self.pacer.after(key, response.headers)
        if response.status_code != 200:
            raise oauth_error(response, doing=doing, refreshing=refreshing, now=self.clock.now())
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PlatformUnavailable(
                f"X sent an unreadable answer while {doing}.",
                platform=PLATFORM,
                reason="bad_response",
            )
        return body

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        raw = await self._oauth_post(
            self._config.token_url,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
                "client_id": self._config.client_id,
            },
            doing="the sign-in code",
        )
        return token_set(raw, now=self._now())

    async def refresh(self, token: TokenSet) -> TokenSet:
        """A fresh token pair; the old refresh token is spent from now on."""
        if not token.refresh_token:
            raise NeedsRelink(
                "This X link has no refresh token; link the X account again.",
                platform=PLATFORM,
                reason="no_refresh_token",
            )
        raw = await self._oauth_post(
            self._config.token_url,
            {
                "grant_type": "refresh_token",
                "refresh_token": token.refresh_token,
                "client_id": self._config.client_id,
            },
            doing="renewing the X sign-in",
            refreshing=True,
        )
        return token_set(raw, now=self._now(), previous=token)

    async def revoke(self, token: TokenSet) -> None:
        """Revoke the refresh token, then the access token; ones already dead are fine."""
        pairs = [(token.refresh_token, "refresh_token"), (token.access_token, "access_token")]
        for value, hint in pairs:
            if not value:
                continue
            try:
                await self._oauth_post(
                    self._config.revoke_url,
                    {"token": value, "token_type_hint": hint, "client_id": self._config.client_id},
                    doing="revoking access",
                )
            except InvalidRequest:
                continue  # already revoked or expired: what we wanted

    # --- account ----------------------------------------------------------------------

    async def _me(self, token: TokenSet) -> dict[str, Any]:
        body = await self._api.call(
            "GET",
            "2/users/me",
            token=token.access_token,
            endpoint="GET /2/users/me",
            doing="reading the X account",
            params={"user.fields": "public_metrics,username,name"},
        )
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("id") or not data.get("username"):
            raise PlatformUnavailable(
                "X's account answer was incomplete; try again.",
                platform=PLATFORM,
                reason="bad_response",
            )
        return data

    async def profile(self, token: TokenSet) -> AccountProfile:
        data = await self._me(token)
        username = str(data["username"])
        metrics = data.get("public_metrics")
        followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
        return AccountProfile(
            external_id=str(data["id"]),
            handle=username,
            display_name=str(data.get("name") or username),
            url=f"https://x.com/{username}",
            followers=int(followers) if isinstance(followers, int) else None,
            extra={
                k: metrics[k]
                for k in ("following_count", "tweet_count", "listed_count")
                if isinstance(metrics, dict) and k in metrics
            },
        )

    # --- reading ----------------------------------------------------------------------

    async def _timeline(
        self, token: TokenSet, user_id: str, params: dict[str, str | int], *, limit: int
    ) -> list[dict[str, Any]]:
        """The account's own posts (no reposts or replies), newest first, up to `limit`."""
        page_size = self.capabilities.metrics.recent_page_size
        posts: list[dict[str, Any]] = []
        cursor: str | None = None
        pages = 0
        while len(posts) < limit and pages < MAX_PERIOD_PAGES:
            query: dict[str, str | int] = {
                **params,
                "exclude": "retweets,replies",
                "max_results": min(page_size, max(5, limit - len(posts))),
            }
            if cursor:
                query["pagination_token"] = cursor
            body = await self._api.call(
                "GET",
                f"2/users/{user_id}/tweets",
                token=token.access_token,
                endpoint="GET /2/users/:id/tweets",
                doing="listing recent posts",
                params=query,
            )
            pages += 1
            posts += [t for t in body.get("data") or [] if isinstance(t, dict) and t.get("id")]
            meta = body.get("meta")
            cursor = meta.get("next_token") if isinstance(meta, dict) else None
            if not cursor:
                break
        return posts[:limit]

    async def recent_posts(
        self, token: TokenSet, account: AccountProfile, *, limit: int = 50
    ) -> list[PostSummary]:
        posts = await self._timeline(
            token, account.external_id, {"tweet.fields": "created_at"}, limit=limit
        )
        return [
            PostSummary(
                post_id=str(t["id"]),
                title=title_of(t.get("text")),
                published_at=parse_time(t.get("created_at")),
                url=post_url(str(t["id"])),
            )
            for t in posts
        ]

    async def _lookup(self, token: TokenSet, ids: list[str], *, private: bool) -> dict[str, Any]:
        fields = PUBLIC_FIELDS + ("," + ",".join(PRIVATE_FIELDS) if private else "")
        return await self._api.call(
            "GET",
            "2/tweets",
            token=token.access_token,
            endpoint="GET /2/tweets",
            doing="reading post metrics",
            params={"ids": ",".join(ids), "tweet.fields": fields},
        )

    async def post_metrics(self, token: TokenSet, post_ids: Sequence[str]) -> list[PostMetrics]:
        """Figures for many posts, 100 ids a call. Private (non-public, organic) metrics
        are asked for only for posts under 30 days old (an id tells its age); posts X
        refuses them for are read again with public metrics only. Missing posts are
        left out."""
        ids = [p for p in dict.fromkeys(str(p) for p in post_ids) if p.isdigit()]
        now = self._now()
        young = {p for p in ids if private_metrics_allowed(p, now, margin=PRIVATE_METRICS_MARGIN)}
        recent = [p for p in ids if p in young]
        older = [p for p in ids if p not in young]
        per_call = self.capabilities.metrics.max_ids_per_call
        found: dict[str, PostMetrics] = {}
        public_again: list[str] = []
        for group, private in ((recent, True), (older, False)):
            for start in range(0, len(group), per_call):
                batch = group[start : start + per_call]
                try:
                    body = await self._lookup(token, batch, private=private)
                except (InvalidRequest, PermissionDenied) as exc:
                    if not private:
                        raise
                    log.info("x private metrics refused", extra={"reason": exc.reason})
                    public_again += batch
                    continue
                as_of = self._now()
                for tweet in body.get("data") or []:
                    if isinstance(tweet, dict) and tweet.get("id"):
                        found[str(tweet["id"])] = post_metrics_from(tweet, as_of=as_of)
                public_again += sorted(field_denied_ids(body.get("errors")) - set(found))
        for start in range(0, len(public_again), per_call):
            body = await self._lookup(token, public_again[start : start + per_call], private=False)
            as_of = self._now()
            for tweet in body.get("data") or []:
                if isinstance(tweet, dict) and tweet.get("id"):
                    found[str(tweet["id"])] = post_metrics_from(tweet, as_of=as_of)
        return [found[p] for p in ids if p in found]

    async def account_metrics(
        self, token: TokenSet, account: AccountProfile, *, start: date, end: date
    ) -> AccountMetrics:
        """Totals over the account's own posts published in [start, end] (UTC days), and
        its top posts by views. X has no account-level report on API v2."""
        if end < start:
            raise InvalidRequest(
                "The period ends before it starts.", platform=PLATFORM, reason="bad_range"
            )
        longest = self.capabilities.metrics.max_period_days
        if (end - start).days + 1 > longest:
            raise InvalidRequest(
                f"X gives figures for at most {longest} days at a time; pick a shorter period.",
                platform=PLATFORM,
                reason="range_too_long",
            )
        since = datetime.combine(start, time(), UTC)
        until = min(datetime.combine(end + timedelta(days=1), time(), UTC), self._now())
        params: dict[str, str | int] = {
            "tweet.fields": PUBLIC_FIELDS,
            "start_time": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_time": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        limit = MAX_PERIOD_PAGES * self.capabilities.metrics.recent_page_size
        raw = await self._timeline(token, account.external_id, params, limit=limit)
        as_of = self._now()
        posts = [post_metrics_from(t, as_of=as_of) for t in raw]
        ranked = sorted(posts, key=lambda p: -(p.value(Metric.VIEWS) or 0.0))
        return AccountMetrics(
            platform=PLATFORM,
            account_id=account.external_id,
            start=start,
            end=end,
            as_of=as_of,
            figures=sum_figures(posts),
            top_posts=ranked[:TOP_POSTS],
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
        """Upload the video (resuming), then post it with the composed text, exactly once."""
        if request.privacy != "public":
            raise InvalidRequest(
                "X posts are always public.", platform=PLATFORM, reason="privacy_unsupported"
            )
        text = compose_post_text(request)
        problems = self.capabilities.caption_rules.problems(title=None, body=text)
        if problems:
            raise InvalidRequest(
                f"The X text has problems: {'; '.join(problems)}.",
                platform=PLATFORM,
                reason="caption",
            )
        raw, _ = await checkpoint.load()
        saved = UploadState.decode(raw)
        if saved is not None and saved.phase == "posted" and saved.post_id:
            return UploadResult(saved.post_id, post_url(saved.post_id), "public")
        if saved is not None and saved.phase == "posting":
            # Our post request went out but its answer was lost: look before posting again.
            post_id = await self._find_post_with(token, saved.media_key)
            if post_id is not None:
                return await self._posted(saved, post_id, source, checkpoint, progress)
            saved = replace(saved, phase="finalized")
        state = await self.uploader.prepare(token, source, saved, checkpoint, progress)
        state = replace(state, phase="posting")
        await checkpoint.save(state.encode(), source.size)
        body = await self._api.call(
            "POST",
            "2/tweets",
            token=token.access_token,
            endpoint="POST /2/tweets",
            doing="posting",
            json={"text": text, "media": {"media_ids": [state.media_id]}},
        )
        data = body.get("data")
        post_id = str(data.get("id") or "") if isinstance(data, dict) else ""
        if not post_id:
            raise PlatformUnavailable(
                "X did not confirm the post.", platform=PLATFORM, reason="bad_response"
            )
        return await self._posted(state, post_id, source, checkpoint, progress)

    async def _posted(
        self,
        state: UploadState,
        post_id: str,
        source: ByteSource,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None,
    ) -> UploadResult:
        await checkpoint.save(replace(state, phase="posted", post_id=post_id).encode(), source.size)
        if progress is not None:
            try:
                await progress(source.size, source.size)
            except Exception:  # cosmetic, and a cancel now comes too late: the post is up
                log.warning("progress callback failed", exc_info=True)
        log.info("x post created", extra={"post_id": post_id})
        return UploadResult(post_id, post_url(post_id), "public")

    async def _find_post_with(self, token: TokenSet, media_key: str) -> str | None:
        """The id of a recent post of this account carrying `media_key`, if there is one."""
        if not media_key:
            return None
        try:
            me = await self._me(token)
            posts = await self._timeline(
                token, str(me["id"]), {"tweet.fields": "attachments"}, limit=10
            )
        except IntegrationError as exc:
            if exc.retryable:
                raise  # cannot tell now; posting blindly could post twice
            return None
        for post in posts:
            attachments = post.get("attachments")
            keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
            if isinstance(keys, list) and media_key in keys:
                return str(post["id"])
        return None
