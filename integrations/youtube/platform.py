"""YouTubePlatform: the SocialPlatform for YouTube (Data API v3, Analytics v2, Google OAuth).

Every call, OAuth token calls included, goes through the injected `httpx.AsyncClient`
(from `integrations.http.make_client`), so all of them share YouTube's retries, circuit
breaker and concurrency cap. Token calls are plain form posts (RFC 6749 with PKCE S256,
RFC 7636): two requests do not need an OAuth library, and a plain post keeps network
failures, Google's error answers and our own bugs apart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
)
from integrations.capabilities import PlatformCapabilities
from integrations.errors import (
    InvalidRequest,
    NeedsRelink,
    NotFound,
    PlatformUnavailable,
)
from integrations.youtube._errors import PLATFORM, error_from_response
from integrations.youtube.analytics import (
    REPORT_METRICS,
    figures_from_row,
    figures_from_statistics,
    report_rows,
    series_from_table,
)
from integrations.youtube.upload import DEFAULT_CHUNK_BYTES, ResumableUploader

log = logging.getLogger(__name__)

SCOPES: tuple[str, ...] = (
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube.readonly",
    "https://www.googleapis.com/auth/yt-analytics.readonly",
)


@dataclass(frozen=True, slots=True)
class YouTubeConfig:
    """Everything the integration needs from settings (all URLs overridable for fakes)."""

    client_id: str
    client_secret: str
    auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_url: str = "https://oauth2.googleapis.com/token"
    revoke_url: str = "https://oauth2.googleapis.com/revoke"
    api_base: str = "https://www.googleapis.com/youtube/v3"
    upload_base: str = "https://www.googleapis.com/upload"
    analytics_base: str = "https://youtubeanalytics.googleapis.com/v2"
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    oauth_timeout_seconds: float = 20.0

    def __repr__(self) -> str:  # the client secret stays out of reprs
        return f"YouTubeConfig(client_id={self.client_id!r}, api_base={self.api_base!r})"


# The status fields videos.update takes (the others are YouTube's own, read-only).
_WRITABLE_STATUS = (
    "privacyStatus",
    "license",
    "embeddable",
    "publicStatsViewable",
    "selfDeclaredMadeForKids",
    "containsSyntheticMedia",
)


def rfc3339(at: datetime) -> str:
    """An aware instant as YouTube's RFC 3339 UTC form: 2026-12-04T17:00:00Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _pkce_s256(verifier: str) -> str:
    """The PKCE S256 code challenge: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _token_set(raw: dict[str, Any], *, previous: TokenSet | None = None) -> TokenSet:
    expires_in = raw.get("expires_in")
    expires_at = (
        datetime.now(tz=UTC) + timedelta(seconds=float(expires_in))
        if isinstance(expires_in, int | float) and expires_in > 0
        else None
    )
    scope = raw.get("scope")
    scopes = tuple(str(scope).split()) if scope else (previous.scopes if previous else ())
    return TokenSet(
        access_token=str(raw["access_token"]),
        # Google usually omits the refresh token on refresh; a rotated one replaces ours.
        refresh_token=raw.get("refresh_token") or (previous.refresh_token if previous else None),
        expires_at=expires_at,
        scopes=scopes,
        token_type=str(raw.get("token_type") or "Bearer"),
    )


class YouTubePlatform:
    """SocialPlatform implementation for YouTube."""

    scopes: Sequence[str] = SCOPES

    def __init__(
        self,
        *,
        config: YouTubeConfig,
        http: httpx.AsyncClient,
        capabilities: PlatformCapabilities,
        uploader: ResumableUploader | None = None,
    ) -> None:
        self._config = config
        self.capabilities = capabilities
        self._http = http
        self.uploader = uploader or ResumableUploader(
            http=http, upload_base=config.upload_base, chunk_bytes=config.chunk_bytes
        )

    # --- OAuth ----------------------------------------------------------------------
    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        """Google's consent URL: offline access (a refresh token), PKCE S256."""
        query = {
            "response_type": "code",
            "client_id": self._config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(SCOPES),
            "state": state,
            "code_challenge": _pkce_s256(code_verifier),
            "code_challenge_method": "S256",
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
        }
        return f"{self._config.auth_url}?{urlencode(query)}"

    async def _token_call(self, doing: str, form: dict[str, str]) -> dict[str, Any]:
        """POST the token endpoint (client_secret_post). Not retried: a code is single-use
        and a refresh may rotate the refresh token, so a replay could lose the new one."""
        response = await self._http.post(
            self._config.token_url,
            data={
                **form,
                "client_id": self._config.client_id,
                "client_secret": self._config.client_secret,
            },
            headers={"Accept": "application/json"},
            timeout=self._config.oauth_timeout_seconds,
        )
        if response.status_code != 200:
            raise error_from_response(response, doing=doing)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise PlatformUnavailable(
                f"Google's answer while {doing} held no token; try again later.",
                platform=PLATFORM,
                status=response.status_code,
                reason="bad_response",
            )
        return body

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        raw = await self._token_call(
            "exchanging the authorization code",
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": code_verifier,
                "redirect_uri": redirect_uri,
            },
        )
        return _token_set(raw)

    async def refresh(self, token: TokenSet) -> TokenSet:
        if not token.refresh_token:
            raise NeedsRelink(
                "This account has no refresh token; link it again.",
                platform=PLATFORM,
                reason="no_refresh_token",
            )
        raw = await self._token_call(
            "refreshing the token",
            {"grant_type": "refresh_token", "refresh_token": token.refresh_token},
        )
        return _token_set(raw, previous=token)

    async def revoke(self, token: TokenSet) -> None:
        # Revoking the refresh token also revokes its access tokens.
        value = token.refresh_token or token.access_token
        response = await self._http.post(
            self._config.revoke_url,
            data={"token": value},
            # Revoking twice is harmless (the second answers invalid_token), so retry it.
            extensions={"idempotent": True},
        )
        # 400 invalid_token: already revoked or expired, which is what we wanted.
        if response.status_code not in (200, 400):
            raise error_from_response(response, doing="revoking access")

    # --- Data API -------------------------------------------------------------------
    async def _get(self, url: str, token: TokenSet, params: dict[str, Any], doing: str) -> Any:
        response = await self._http.get(
            url, params=params, headers={"Authorization": f"Bearer {token.access_token}"}
        )
        if response.status_code != 200:
            raise error_from_response(response, doing=doing)
        return response.json()

    async def profile(self, token: TokenSet) -> AccountProfile:
        body = await self._get(
            f"{self._config.api_base}/channels",
            token,
            {"mine": "true", "part": "snippet,contentDetails,statistics"},
            "reading the channel",
        )
        items = body.get("items") or []
        if not items:
            raise NotFound(
                "This Google account has no YouTube channel yet; create one and link again.",
                platform=PLATFORM,
            )
        channel = items[0]
        snippet = channel.get("snippet") or {}
        stats = channel.get("statistics") or {}
        uploads = ((channel.get("contentDetails") or {}).get("relatedPlaylists") or {}).get(
            "uploads"
        )
        followers = None
        if not stats.get("hiddenSubscriberCount") and stats.get("subscriberCount") is not None:
            followers = int(stats["subscriberCount"])
        title = str(snippet.get("title") or channel["id"])
        return AccountProfile(
            external_id=str(channel["id"]),
            handle=str(snippet.get("customUrl") or title),
            display_name=title,
            url=f"https://www.youtube.com/channel/{channel['id']}",
            followers=followers,
            extra={"uploads_playlist": uploads} if uploads else {},
        )

    @staticmethod
    def _uploads_playlist(account: AccountProfile) -> str:
        playlist = account.extra.get("uploads_playlist")
        if playlist:
            return str(playlist)
        # A channel's uploads playlist id is its channel id with "UC" replaced by "UU".
        if account.external_id.startswith("UC"):
            return "UU" + account.external_id[2:]
        raise InvalidRequest("This channel has no uploads playlist.", platform=PLATFORM)

    async def recent_posts(
        self, token: TokenSet, account: AccountProfile, *, limit: int = 50
    ) -> list[PostSummary]:
        out: list[PostSummary] = []
        page_token: str | None = None
        playlist = self._uploads_playlist(account)
        while len(out) < limit:
            params: dict[str, Any] = {
                "playlistId": playlist,
                "part": "snippet,contentDetails",
                "maxResults": min(self.capabilities.metrics.recent_page_size, limit - len(out)),
            }
            if page_token:
                params["pageToken"] = page_token
            body = await self._get(
                f"{self._config.api_base}/playlistItems", token, params, "listing recent videos"
            )
            for item in body.get("items") or []:
                details = item.get("contentDetails") or {}
                snippet = item.get("snippet") or {}
                video_id = details.get("videoId") or (snippet.get("resourceId") or {}).get(
                    "videoId"
                )
                if not video_id:
                    continue
                out.append(
                    PostSummary(
                        post_id=str(video_id),
                        title=snippet.get("title"),
                        published_at=_parse_time(
                            details.get("videoPublishedAt") or snippet.get("publishedAt")
                        ),
                        url=f"https://www.youtube.com/watch?v={video_id}",
                    )
                )
            page_token = body.get("nextPageToken")
            if not page_token:
                break
        return out[:limit]

    async def post_metrics(self, token: TokenSet, post_ids: Sequence[str]) -> list[PostMetrics]:
        ids = list(dict.fromkeys(post_ids))
        out: list[PostMetrics] = []
        per_call = self.capabilities.metrics.max_ids_per_call
        for start in range(0, len(ids), per_call):
            batch = ids[start : start + per_call]
            body = await self._get(
                f"{self._config.api_base}/videos",
                token,
                {"part": "snippet,statistics", "id": ",".join(batch), "maxResults": per_call},
                "reading video statistics",
            )
            as_of = datetime.now(tz=UTC)
            for item in body.get("items") or []:
                snippet = item.get("snippet") or {}
                out.append(
                    PostMetrics(
                        platform=PLATFORM,
                        post_id=str(item["id"]),
                        as_of=as_of,
                        figures=figures_from_statistics(item.get("statistics") or {}),
                        title=snippet.get("title"),
                        url=f"https://www.youtube.com/watch?v={item['id']}",
                        published_at=_parse_time(snippet.get("publishedAt")),
                        thumbnail_url=_thumbnail(snippet),
                    )
                )
        return out

    async def _report(self, token: TokenSet, params: dict[str, Any]) -> Any:
        return await self._get(
            f"{self._config.analytics_base}/reports",
            token,
            {"ids": "channel==MINE", "metrics": REPORT_METRICS, **params},
            "reading YouTube Analytics",
        )

    async def account_metrics(
        self, token: TokenSet, account: AccountProfile, *, start: date, end: date
    ) -> AccountMetrics:
        if end < start:
            raise InvalidRequest("The period ends before it starts.", platform=PLATFORM)
        period = {"startDate": start.isoformat(), "endDate": end.isoformat()}
        totals = await self._report(token, period)
        daily = await self._report(token, {**period, "dimensions": "day", "sort": "day"})
        top = await self._report(
            token, {**period, "dimensions": "video", "sort": "-views", "maxResults": 10}
        )
        as_of = datetime.now(tz=UTC)
        total_rows = report_rows(totals)
        top_posts = [
            PostMetrics(
                platform=PLATFORM,
                post_id=str(row["video"]),
                as_of=as_of,
                figures=figures_from_row(row),
                url=f"https://www.youtube.com/watch?v={row['video']}",
            )
            for row in report_rows(top)
            if row.get("video")
        ]
        return AccountMetrics(
            platform=PLATFORM,
            account_id=account.external_id,
            start=start,
            end=end,
            as_of=as_of,
            figures=figures_from_row(total_rows[0]) if total_rows else {},
            series=series_from_table(daily),
            top_posts=top_posts,
        )

    # --- Scheduling -----------------------------------------------------------------
    async def set_publish_at(
        self, token: TokenSet, post_id: str, publish_at: datetime | None
    ) -> None:
        """Move a private video's publishAt, or clear it (it then stays private)."""
        body = await self._get(
            f"{self._config.api_base}/videos",
            token,
            {"part": "status", "id": post_id},
            "reading the video",
        )
        items = body.get("items") or []
        if not items:
            raise NotFound("That video is no longer on YouTube.", platform=PLATFORM)
        # videos.update replaces the whole status part: send back what it had.
        read = items[0].get("status") or {}
        status = {k: read[k] for k in _WRITABLE_STATUS if k in read}
        status["privacyStatus"] = "private"
        if publish_at is not None:
            status["publishAt"] = rfc3339(publish_at)
        response = await self._http.put(
            f"{self._config.api_base}/videos",
            params={"part": "status"},
            json={"id": post_id, "status": status},
            headers={"Authorization": f"Bearer {token.access_token}"},
        )
        if response.status_code != 200:
            raise error_from_response(response, doing="changing the video's publish time")

    # --- Upload ---------------------------------------------------------------------
    async def upload(
        self,
        token: TokenSet,
        source: ByteSource,
        request: UploadRequest,
        *,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None = None,
    ) -> UploadResult:
        snippet: dict[str, Any] = {"title": request.title, "description": request.description}
        if request.tags:
            snippet["tags"] = list(request.tags)
        if request.category_id:
            snippet["categoryId"] = request.category_id
        status: dict[str, Any] = {
            "privacyStatus": request.privacy,
            "selfDeclaredMadeForKids": request.made_for_kids,
        }
        if request.publish_at is not None:
            # YouTube publishes a private video at publishAt (RFC 3339); it goes public then.
            status["privacyStatus"] = "private"
            status["publishAt"] = rfc3339(request.publish_at)
        metadata = {"snippet": snippet, "status": status}
        video = await self.uploader.run(
            access_token=token.access_token,
            source=source,
            metadata=metadata,
            notify_subscribers=request.notify_subscribers,
            checkpoint=checkpoint,
            progress=progress,
        )
        video_id = str(video.get("id") or "")
        if not video_id:
            raise PlatformUnavailable(
                "YouTube finished the upload without a video id.", platform=PLATFORM
            )
        asked = "private" if request.publish_at is not None else request.privacy
        privacy = str((video.get("status") or {}).get("privacyStatus") or asked)
        return UploadResult(
            post_id=video_id,
            url=f"https://www.youtube.com/watch?v={video_id}",
            privacy=privacy,
            privacy_forced=privacy != asked,
        )


def _thumbnail(snippet: Mapping[str, Any]) -> str | None:
    """The medium still (320x180) of a video's snippet, else any other size it has."""
    sizes = snippet.get("thumbnails") or {}
    for size in ("medium", "high", "default"):
        url = (sizes.get(size) or {}).get("url")
        if isinstance(url, str) and url.startswith("https://"):
            return url
    return None
