"""InstagramPlatform: the SocialPlatform for the Instagram API with Instagram Login.

Facts this follows (developers.facebook.com, Instagram Platform docs):
- Consent at instagram.com/oauth/authorize; the code is exchanged (form POST to
  api.instagram.com/oauth/access_token) for a one-hour token, then at once for a
  60-day token (GET graph.instagram.com/access_token, grant_type=ig_exchange_token).
- There is no refresh token: the long-lived token itself is refreshed while still
  valid (GET /refresh_access_token, grant_type=ig_refresh_token). An expired token
  cannot be revived, so it means linking again.
- Publishing is container based: POST /me/media (media_type=REELS, video_url), poll
  the container's status_code until FINISHED, then POST /me/media_publish.
  Instagram downloads the video from the URL itself; the resumable upload through
  rupload.facebook.com is documented for Facebook Login apps only, so local files
  need a public URL first (see `upload`).
- Insights: /{media}/insights and /me/insights; a metric with no data is simply not
  returned (never 0), and this module keeps it absent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time as monotonic_time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from cachetools import TTLCache

from integrations.base import (
    AccountMetrics,
    AccountProfile,
    ByteSource,
    Figure,
    HostedByteSource,
    Metric,
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
    IntegrationError,
    InvalidRequest,
    NeedsRelink,
    NotFound,
    PermissionDenied,
    PlatformUnavailable,
    format_wait,
)
from integrations.instagram.graph import PLATFORM, GoneObjects, GraphClient
from integrations.text import compose_post_text

log = logging.getLogger(__name__)

# How long an account whose host refused a multiple-id read is read object by object
# before the bot tries a multiple-id read for it again.
MULTI_ID_RETRY_SECONDS = 600.0

DEFAULT_SCOPES: tuple[str, ...] = (
    "instagram_business_basic",
    "instagram_business_content_publish",
    "instagram_business_manage_insights",
)

PROFILE_FIELDS = (
    "user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,"
    "media_count"
)
MEDIA_FIELDS = (
    "id,caption,media_type,media_product_type,permalink,timestamp,like_count,comments_count"
)

FEED_METRICS = ("views", "reach", "likes", "comments", "shares", "saved", "total_interactions")
REELS_METRICS = (*FEED_METRICS, "ig_reels_avg_watch_time", "ig_reels_video_view_total_time")
STORY_METRICS = ("views", "reach", "shares", "total_interactions")

# Instagram metric -> (normalized metric, factor). Reel watch times come in milliseconds.
POST_METRICS: dict[str, tuple[Metric, float]] = {
    "views": (Metric.VIEWS, 1.0),
    "reach": (Metric.REACH, 1.0),
    "likes": (Metric.LIKES, 1.0),
    "comments": (Metric.COMMENTS, 1.0),
    "shares": (Metric.SHARES, 1.0),
    "saved": (Metric.SAVES, 1.0),
    "ig_reels_avg_watch_time": (Metric.AVG_VIEW_DURATION_SECONDS, 1 / 1000),
    "ig_reels_video_view_total_time": (Metric.WATCH_TIME_MINUTES, 1 / 60_000),
}

ACCOUNT_TOTALS = ("views", "reach", "likes", "comments", "shares", "saves", "total_interactions")
ACCOUNT_METRICS: dict[str, Metric] = {
    "views": Metric.VIEWS,
    "reach": Metric.REACH,
    "likes": Metric.LIKES,
    "comments": Metric.COMMENTS,
    "shares": Metric.SHARES,
    "saves": Metric.SAVES,
}
SERIES_METRICS: dict[str, Metric] = {
    "reach": Metric.REACH,
    "follower_count": Metric.FOLLOWERS_GAINED,
}

# Container error subcodes worth explaining (Instagram Platform error-code reference).
CONTAINER_ERRORS = {
    "2207026": "the video format is not supported (use MP4 or MOV with H.264 video and AAC audio)",
    "2207003": "downloading the video took too long",
    "2207020": "the upload expired before it was published",
    "2207053": "an unknown upload error happened",
    "2207052": "the video could not be fetched from its URL",
}

_CONTAINER = "container:"
_PUBLISHED = "published:"


class InstagramPlatform:
    """Instagram through the Instagram API with Instagram Login (professional accounts).

    `http` is injected (timeouts, transport, proxies are the caller's choice); every
    base URL is configurable so tests and local fakes point at loopback.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        capabilities: PlatformCapabilities,
        client_id: str,
        client_secret: str,
        auth_url: str,
        token_url: str,
        graph_base: str,
        api_version: str = "v25.0",
        scopes: Sequence[str] = DEFAULT_SCOPES,
        poll_interval_seconds: float = 5.0,
        publish_timeout_seconds: float = 600.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.capabilities = capabilities
        self.scopes: tuple[str, ...] = tuple(scopes)
        self._client_id = client_id
        self._client_secret = client_secret
        self._auth_url = auth_url
        self._token_url = token_url
        self._graph = GraphClient(http, graph_base=graph_base, api_version=api_version)
        self._poll = poll_interval_seconds
        self._publish_timeout = publish_timeout_seconds
        self._now = clock or (lambda: datetime.now(UTC))
        # Accounts (by a digest of their token) whose host refused `?ids=` reads: read
        # object by object until their entry expires.
        self._single_reads: TTLCache[bytes, bool] = TTLCache(
            maxsize=10_000, ttl=MULTI_ID_RETRY_SECONDS
        )

    def __repr__(self) -> str:  # no secret in reprs
        return f"InstagramPlatform(client_id={self._client_id!r})"

    # --- OAuth ------------------------------------------------------------------------

    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        """Instagram's consent URL. Instagram Login has no PKCE, so `code_verifier` is unused
        here; the caller's state check is what binds the callback to the request."""
        query = urlencode(
            {
                "client_id": self._client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": ",".join(self.scopes),
                "state": state,
            }
        )
        return f"{self._auth_url}?{query}"

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        """Code -> short-lived token -> long-lived (60-day) token, which is what we keep."""
        # Instagram appends "#_" to the redirect; it is not part of the code.
        code = code.strip().removesuffix("#_")
        try:
            body = await self._graph.send(
                "POST",
                self._token_url,
                data={
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "grant_type": "authorization_code",
                    "redirect_uri": redirect_uri,
                    "code": code,
                },
            )
        except (InvalidRequest, NeedsRelink) as exc:
            raise InvalidRequest(
                "Instagram did not accept the sign-in code (it may have expired or been used "
                "already). Start linking again.",
                platform=PLATFORM,
                status=exc.status,
                reason="invalid_code",
            ) from None
        short = body["data"][0] if isinstance(body.get("data"), list) and body["data"] else body
        short_token = short.get("access_token")
        if not isinstance(short_token, str) or not short_token:
            raise PlatformUnavailable(
                "Instagram's sign-in answer had no token. Try linking again.",
                platform=PLATFORM,
                reason="bad_response",
            )
        long = await self._graph.get(
            "access_token",
            token=None,
            params={
                "grant_type": "ig_exchange_token",
                "client_secret": self._client_secret,
                "access_token": short_token,
            },
            versioned=False,
        )
        user_id = short.get("user_id")
        return self._token_from(
            long,
            scopes=_permissions(short.get("permissions")) or self.scopes,
            extra={"user_id": str(user_id)} if user_id is not None else {},
        )

    async def refresh(self, token: TokenSet) -> TokenSet:
        """Refresh the long-lived token itself; an expired one can only be linked again."""
        if token.expires_at is not None and token.expires_at <= self._now():
            raise NeedsRelink(
                "This Instagram link expired. Link the Instagram account again.",
                platform=PLATFORM,
                reason="token_expired",
            )
        body = await self._graph.get(
            "refresh_access_token",
            token=None,
            params={"grant_type": "ig_refresh_token", "access_token": token.access_token},
            versioned=False,
        )
        return self._token_from(body, scopes=token.scopes, extra=dict(token.extra))

    async def revoke(self, token: TokenSet) -> None:
        """Instagram Login has no token revocation endpoint: the person removes the app in
        Instagram's settings. Forgetting the stored token (the caller's job) is all we can do."""
        log.info("instagram has no revoke endpoint; token will just be forgotten")

    def _token_from(
        self, body: dict[str, Any], *, scopes: Iterable[str], extra: dict[str, Any]
    ) -> TokenSet:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise PlatformUnavailable(
                "Instagram's token answer had no token. Try again later.",
                platform=PLATFORM,
                reason="bad_response",
            )
        expires_in = body.get("expires_in")
        expires_at = (
            self._now() + timedelta(seconds=int(expires_in))
            if isinstance(expires_in, int | float)
            else None
        )
        return TokenSet(
            access_token=access,
            refresh_token=None,
            expires_at=expires_at,
            scopes=tuple(scopes),
            token_type=str(body.get("token_type") or "bearer"),
            extra=extra,
        )

    # --- account ----------------------------------------------------------------------

    async def profile(self, token: TokenSet) -> AccountProfile:
        body = await self._graph.get(
            "me", token=token.access_token, params={"fields": PROFILE_FIELDS}
        )
        username = str(body.get("username") or "")
        external = body.get("user_id") or body.get("id")
        if not external or not username:
            raise PlatformUnavailable(
                "Instagram's profile answer was incomplete. Try again later.",
                platform=PLATFORM,
                reason="bad_response",
            )
        followers = body.get("followers_count")
        return AccountProfile(
            external_id=str(external),
            handle=username,
            display_name=str(body.get("name") or username),
            url=f"https://www.instagram.com/{username}/",
            followers=int(followers) if isinstance(followers, int | float) else None,
            extra={
                k: body[k]
                for k in ("id", "account_type", "media_count", "follows_count")
                if k in body
            },
        )

    # --- publishing -------------------------------------------------------------------

    async def upload(
        self,
        token: TokenSet,
        source: ByteSource,
        request: UploadRequest,
        *,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Publish a video as a Reel from the source's public URL, resuming from the checkpoint.

        The checkpoint keeps "container:<id>" while Instagram processes the video and
        "published:<media id>" once published, so a restart neither creates a second
        container nor publishes twice.
        """
        if request.privacy != "public":
            raise InvalidRequest(
                "Instagram posts are always public. Ask again with public visibility to "
                "publish on Instagram.",
                platform=PLATFORM,
                reason="privacy_unsupported",
            )
        caption = compose_post_text(request)
        problems = self.capabilities.caption_rules.problems(title=None, body=caption)
        if problems:
            raise InvalidRequest(
                f"The Instagram caption has problems: {'; '.join(problems)}.",
                platform=PLATFORM,
                reason="caption",
            )

        saved, _ = await checkpoint.load()
        if saved and saved.startswith(_PUBLISHED):
            media_id = saved.removeprefix(_PUBLISHED)
            return UploadResult(media_id, await self._permalink(token, media_id), "public")

        container = (
            saved.removeprefix(_CONTAINER) if saved and saved.startswith(_CONTAINER) else None
        )
        if container is None:
            video_url = source.public_url if isinstance(source, HostedByteSource) else None
            if not isinstance(video_url, str) or not video_url.startswith(("https://", "http://")):
                raise InvalidRequest(
                    "Instagram fetches videos from a public web address, and this video is only "
                    "stored here. Share it from a public link (or upload it somewhere public) "
                    "and try again.",
                    platform=PLATFORM,
                    reason="needs_public_url",
                )
            created = await self._graph.post(
                "me/media",
                token=token.access_token,
                data={
                    "media_type": "REELS",
                    "video_url": video_url,
                    "caption": caption,
                    "share_to_feed": "true",
                },
            )
            container = str(created.get("id") or "")
            if not container:
                raise PlatformUnavailable(
                    "Instagram did not create the post. Try again later.",
                    platform=PLATFORM,
                    reason="bad_response",
                )
            await checkpoint.save(_CONTAINER + container, 0)
        if progress is not None:
            await progress(0, source.size)

        state = await self._wait_for_container(token, container, checkpoint)
        if state == "PUBLISHED":
            media_id = await self._find_published(token, caption)
        else:
            published = await self._graph.post(
                "me/media_publish", token=token.access_token, data={"creation_id": container}
            )
            media_id = str(published.get("id") or "")
            if not media_id:
                raise PlatformUnavailable(
                    "Instagram did not confirm the post. Try again later.",
                    platform=PLATFORM,
                    reason="bad_response",
                )
        await checkpoint.save(_PUBLISHED + media_id, source.size)
        if progress is not None:
            await progress(source.size, source.size)
        log.info("instagram reel published", extra={"media_id": media_id})
        return UploadResult(media_id, await self._permalink(token, media_id), "public")

    async def _wait_for_container(
        self, token: TokenSet, container: str, checkpoint: UploadCheckpoint
    ) -> str:
        """Poll status_code until FINISHED (or PUBLISHED); ERROR/EXPIRED clear the checkpoint."""
        deadline = monotonic_time.monotonic() + self._publish_timeout
        while True:
            body = await self._graph.get(
                container, token=token.access_token, params={"fields": "status_code,status"}
            )
            status_code = str(body.get("status_code") or "IN_PROGRESS")
            if status_code in {"FINISHED", "PUBLISHED"}:
                return status_code
            if status_code == "ERROR":
                await checkpoint.save(None, 0)  # a retry must start with a fresh container
                raise InvalidRequest(
                    _container_error(str(body.get("status") or "")),
                    platform=PLATFORM,
                    reason="container_error",
                )
            if status_code == "EXPIRED":
                await checkpoint.save(None, 0)
                raise PlatformUnavailable(
                    "Instagram discarded the prepared video before it was published. "
                    "Try again to start over.",
                    platform=PLATFORM,
                    reason="container_expired",
                )
            if monotonic_time.monotonic() >= deadline:
                # The checkpoint still names the container: a retry resumes polling it.
                wait = max(self._poll, 60.0)
                raise PlatformUnavailable(
                    f"Instagram is still processing the video. Try again in about "
                    f"{format_wait(wait)}; it will pick up where it left off.",
                    platform=PLATFORM,
                    reason="processing_timeout",
                    retry_after=wait,
                )
            await asyncio.sleep(self._poll)

    async def _find_published(self, token: TokenSet, caption: str) -> str:
        """A container already PUBLISHED (our publish answer was lost): find its media."""
        body = await self._graph.get(
            "me/media", token=token.access_token, params={"fields": "id,caption", "limit": 10}
        )
        for item in body.get("data") or []:
            if isinstance(item, dict) and (item.get("caption") or "") == caption and item.get("id"):
                return str(item["id"])
        raise InvalidRequest(
            "Instagram says this video was already published, but the post could not be "
            "found among the latest ones. Check the Instagram profile.",
            platform=PLATFORM,
            reason="already_published",
        )

    async def _permalink(self, token: TokenSet, media_id: str) -> str | None:
        try:
            body = await self._graph.get(
                media_id, token=token.access_token, params={"fields": "permalink"}
            )
        except IntegrationError:
            return None  # the post exists; a missing link is not worth failing the publish
        link = body.get("permalink")
        return link if isinstance(link, str) else None

    # --- reading ----------------------------------------------------------------------

    async def recent_posts(
        self, token: TokenSet, account: AccountProfile, *, limit: int = 50
    ) -> list[PostSummary]:
        """The account's newest posts, newest first, following Graph's `after` cursors."""
        posts: list[PostSummary] = []
        after: str | None = None
        while len(posts) < limit:
            params: dict[str, str | int] = {
                "fields": "id,caption,timestamp,permalink",
                "limit": min(50, limit - len(posts)),
            }
            if after:
                params["after"] = after
            body = await self._graph.get("me/media", token=token.access_token, params=params)
            items = [i for i in body.get("data") or [] if isinstance(i, dict) and i.get("id")]
            for item in items:
                posts.append(
                    PostSummary(
                        post_id=str(item["id"]),
                        title=_title(item.get("caption")),
                        published_at=_parse_time(item.get("timestamp")),
                        url=item.get("permalink"),
                    )
                )
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after") if paging.get("next") else None
            if not items or not after:
                break
        return posts[:limit]

    async def post_metrics(self, token: TokenSet, post_ids: Sequence[str]) -> list[PostMetrics]:
        """Figures for many posts: one multiple-id read for the basics per 50 posts, and one
        insights read per media kind in those 50 (metrics differ between Reels, feed and
        stories). Posts that no longer exist are left out."""
        ids = list(dict.fromkeys(str(p) for p in post_ids if str(p)))
        as_of = self._now()
        out: list[PostMetrics] = []
        per_call = self.capabilities.metrics.max_ids_per_call
        for start in range(0, len(ids), per_call):
            chunk = ids[start : start + per_call]
            basics = await self._read_many(token, chunk, MEDIA_FIELDS, probe=True)
            groups: dict[tuple[str, ...], list[str]] = {}
            for media_id, basic in basics.items():
                metrics = _metrics_for(basic)
                if metrics:
                    groups.setdefault(metrics, []).append(media_id)
            insights: dict[str, dict[Metric, Figure]] = {}
            for metrics, group in groups.items():
                try:
                    nodes = await self._read_many(
                        token, group, f"insights.metric({','.join(metrics)})"
                    )
                except (InvalidRequest, PermissionDenied) as exc:
                    # e.g. too few viewers yet, or the insights permission was not granted:
                    # the counts from the basics still stand, the rest stays absent.
                    log.info("instagram media insights unavailable", extra={"reason": exc.reason})
                    continue
                for media_id, found in nodes.items():
                    data = (found.get("insights") or {}).get("data") or []
                    insights[media_id] = _post_figures(data)
            for media_id in chunk:
                node = basics.get(media_id)
                if node is None:
                    continue
                figures = dict(insights.get(media_id, {}))
                for field, metric in (
                    ("like_count", Metric.LIKES),
                    ("comments_count", Metric.COMMENTS),
                ):
                    value = node.get(field)
                    if metric not in figures and isinstance(value, int | float):
                        figures[metric] = Figure(float(value), field)
                out.append(
                    PostMetrics(
                        platform="instagram",
                        post_id=media_id,
                        as_of=as_of,
                        figures=with_engagement_rate(figures),
                        title=_title(node.get("caption")),
                        url=node.get("permalink"),
                        published_at=_parse_time(node.get("timestamp")),
                    )
                )
        return out

    async def _read_many(
        self, token: TokenSet, ids: list[str], fields: str, *, probe: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Read `fields` of many objects with one multiple-id read (`?ids=a,b`).

        Graph fails the whole read when one id is gone. When its answer names the gone
        ids, the batch is read again without them (one more read per deletion noticed);
        when it does not, the batch is split in two and each half read the same way
        (about 2k·log2(n) reads for k gone among n, not n). With `probe`, an account
        whose host refuses multiple-id reads is read object by object for
        MULTI_ID_RETRY_SECONDS, then tried again; other accounts keep their batches.
        """
        account = hashlib.blake2b(token.access_token.encode(), digest_size=16).digest()
        while len(ids) > 1 and account not in self._single_reads:
            try:
                body = await self._graph.get(
                    "", token=token.access_token, params={"ids": ",".join(ids), "fields": fields}
                )
            except NotFound as exc:
                gone = set(exc.ids if isinstance(exc, GoneObjects) else ()) & set(ids)
                if gone:
                    ids = [i for i in ids if i not in gone]
                    continue
                half = len(ids) // 2
                found = await self._read_many(token, ids[:half], fields)
                found.update(await self._read_many(token, ids[half:], fields))
                return found
            except InvalidRequest:
                if not probe:
                    raise
                log.warning("instagram refused a multiple-id read; reading posts one by one")
                self._single_reads[account] = True
            else:
                return {k: v for k, v in body.items() if isinstance(v, dict)}
        found = {}
        for object_id in ids:
            try:
                found[object_id] = await self._graph.get(
                    object_id, token=token.access_token, params={"fields": fields}
                )
            except NotFound:
                continue
        return found

    async def account_metrics(
        self, token: TokenSet, account: AccountProfile, *, start: date, end: date
    ) -> AccountMetrics:
        """Totals over [start, end] (UTC days) plus a daily reach/new-followers series."""
        if end < start:
            raise InvalidRequest(
                "The start date must be on or before the end date.",
                platform=PLATFORM,
                reason="bad_range",
            )
        if (end - start).days + 1 > self.capabilities.metrics.max_period_days:
            raise InvalidRequest(
                f"Instagram gives account figures for at most {self.capabilities.metrics.max_period_days} days at a "
                "time. Pick a shorter range.",
                platform=PLATFORM,
                reason="range_too_long",
            )
        since = int(datetime.combine(start, time(), UTC).timestamp())
        until = int(datetime.combine(end + timedelta(days=1), time(), UTC).timestamp())
        window: dict[str, str | int] = {"period": "day", "since": since, "until": until}

        body = await self._graph.get(
            "me/insights",
            token=token.access_token,
            params={"metric": ",".join(ACCOUNT_TOTALS), "metric_type": "total_value", **window},
        )
        figures: dict[Metric, Figure] = {}
        for item in body.get("data") or []:
            metric = ACCOUNT_METRICS.get(str(item.get("name")))
            value = _total_value(item)
            if metric is not None and value is not None:
                figures[metric] = Figure(value, str(item["name"]))

        follows = await self._optional_insights(
            token,
            {
                "metric": "follows_and_unfollows",
                "metric_type": "total_value",
                "breakdown": "follow_type",
                **window,
            },
        )
        for item in follows:
            for breakdown in (item.get("total_value") or {}).get("breakdowns") or []:
                for result in breakdown.get("results") or []:
                    dims = result.get("dimension_values") or []
                    value = result.get("value")
                    if not isinstance(value, int | float):
                        continue
                    if "FOLLOWER" in dims:
                        figures[Metric.FOLLOWERS_GAINED] = Figure(
                            float(value), "follows_and_unfollows:FOLLOWER"
                        )
                    elif "NON_FOLLOWER" in dims:
                        figures[Metric.FOLLOWERS_LOST] = Figure(
                            float(value), "follows_and_unfollows:NON_FOLLOWER"
                        )

        daily: dict[date, dict[Metric, Figure]] = {}
        series_rows = await self._optional_insights(
            token,
            {"metric": ",".join(SERIES_METRICS), "metric_type": "time_series", **window},
        )
        for item in series_rows:
            metric = SERIES_METRICS.get(str(item.get("name")))
            if metric is None:
                continue
            for point in item.get("values") or []:
                ended = _parse_time(point.get("end_time"))
                value = point.get("value")
                if ended is None or not isinstance(value, int | float):
                    continue
                day = (ended - timedelta(days=1)).date()
                if start <= day <= end:
                    daily.setdefault(day, {})[metric] = Figure(float(value), str(item["name"]))

        return AccountMetrics(
            platform="instagram",
            account_id=account.external_id,
            start=start,
            end=end,
            as_of=self._now(),
            figures=with_engagement_rate(figures),
            series=sorted(daily.items()),
        )

    async def _optional_insights(
        self, token: TokenSet, params: dict[str, str | int]
    ) -> list[dict[str, Any]]:
        """Account insights some accounts cannot have (e.g. under 100 followers): absent, not 0."""
        try:
            body = await self._graph.get("me/insights", token=token.access_token, params=params)
        except (InvalidRequest, PermissionDenied) as exc:
            log.info("instagram account insight unavailable", extra={"reason": exc.reason})
            return []
        return [i for i in body.get("data") or [] if isinstance(i, dict)]


def _permissions(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    if isinstance(raw, list):
        return tuple(str(p) for p in raw)
    return ()


def _metrics_for(node: dict[str, Any]) -> tuple[str, ...]:
    kind = str(node.get("media_product_type") or "").upper()
    if kind == "REELS":
        return REELS_METRICS
    if kind == "STORY":
        return STORY_METRICS
    if kind in {"FEED", ""} and node.get("media_type"):
        return FEED_METRICS
    return ()  # ads and unknown kinds: no insights request


def _post_figures(data: Iterable[Any]) -> dict[Metric, Figure]:
    figures: dict[Metric, Figure] = {}
    for item in data:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name"))
        mapped = POST_METRICS.get(name)
        value = _total_value(item)
        if mapped is None or value is None:
            continue
        metric, factor = mapped
        figures[metric] = Figure(round(value * factor, 3) if factor != 1.0 else value, name)
    return figures


def _total_value(item: dict[str, Any]) -> float | None:
    """The one number of an insights row: `total_value.value`, else the first `values` entry."""
    total = item.get("total_value")
    if isinstance(total, dict) and isinstance(total.get("value"), int | float):
        return float(total["value"])
    values = item.get("values")
    if isinstance(values, list) and values and isinstance(values[0], dict):
        value = values[0].get("value")
        if isinstance(value, int | float):
            return float(value)
    return None


def _container_error(status: str) -> str:
    for subcode, why in CONTAINER_ERRORS.items():
        if subcode in status:
            return f"Instagram could not process the video: {why}."
    return (
        "Instagram could not process the video. Check that it is an MP4 or MOV Reel and try again."
    )


def _title(caption: Any) -> str | None:
    if not isinstance(caption, str) or not caption.strip():
        return None
    first = caption.strip().splitlines()[0]
    return first if len(first) <= 100 else first[:99] + "…"


def _parse_time(value: Any) -> datetime | None:
    """Graph timestamps look like 2026-04-05T07:56:32+0000."""
    if not isinstance(value, str):
        return None
    for parse in (
        lambda v: datetime.strptime(v, "%Y-%m-%dT%H:%M:%S%z"),
        datetime.fromisoformat,
    ):
        try:
            return parse(value)
        except ValueError:
            continue
    return None
