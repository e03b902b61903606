"""The SocialPlatform protocol and the normalized metrics model.

One implementation per platform package, registered in `integrations.registry`;
what sets a platform apart is declared in its `PlatformCapabilities`. Platforms know HTTP and their own API; they know nothing of Postgres, chat or
users. What must outlive a call (tokens, upload sessions) goes out through the
types below and is stored by the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from integrations.capabilities import PlatformCapabilities

PlatformName = str
"""A registered platform's name (see `integrations.registry`)."""


class Metric(StrEnum):
    """Normalized metric names, the same for every platform."""

    VIEWS = "views"
    LIKES = "likes"
    COMMENTS = "comments"
    SHARES = "shares"
    SAVES = "saves"
    WATCH_TIME_MINUTES = "watch_time_minutes"
    AVG_VIEW_DURATION_SECONDS = "avg_view_duration_seconds"
    FOLLOWERS_GAINED = "followers_gained"
    FOLLOWERS_LOST = "followers_lost"
    # A total as of `as_of`, for platforms that report no per-period gains (TikTok).
    FOLLOWERS = "followers"
    REACH = "reach"
    ENGAGEMENT_RATE = "engagement_rate"


@dataclass(frozen=True, slots=True)
class Figure:
    """One number and the platform metric it came from (e.g. YouTube `estimatedMinutesWatched`)."""

    value: float
    source: str


Figures = Mapping[Metric, Figure]


def engagement_rate(figures: Figures) -> Figure | None:
    """(likes + comments + shares + saves) / (reach, else views); absent if nothing to divide by.

    Interactions that the platform does not report are left out rather than counted as zero.
    """
    base = figures.get(Metric.REACH) or figures.get(Metric.VIEWS)
    if base is None or base.value <= 0:
        return None
    parts = [
        figures[m]
        for m in (Metric.LIKES, Metric.COMMENTS, Metric.SHARES, Metric.SAVES)
        if m in figures
    ]
    if not parts:
        return None
    total = sum(p.value for p in parts)
    sources = "+".join(p.source for p in parts)
    return Figure(round(total / base.value, 6), f"({sources})/{base.source}")


def with_engagement_rate(figures: Mapping[Metric, Figure]) -> dict[Metric, Figure]:
    out = dict(figures)
    rate = engagement_rate(out)
    if rate is not None and Metric.ENGAGEMENT_RATE not in out:
        out[Metric.ENGAGEMENT_RATE] = rate
    return out


@dataclass(frozen=True, slots=True)
class PostMetrics:
    """Figures for one post at `as_of`. A metric the platform does not give is absent, not 0."""

    platform: PlatformName
    post_id: str
    as_of: datetime
    figures: dict[Metric, Figure]
    title: str | None = None
    url: str | None = None
    published_at: datetime | None = None
    thumbnail_url: str | None = None  # a still of the post, where the platform gives one

    def value(self, metric: Metric) -> float | None:
        figure = self.figures.get(metric)
        return None if figure is None else figure.value


@dataclass(frozen=True, slots=True)
class AccountMetrics:
    """Account figures over [start, end] (platform-local days), plus an optional daily series."""

    platform: PlatformName
    account_id: str
    start: date
    end: date
    as_of: datetime
    figures: dict[Metric, Figure]
    series: list[tuple[date, dict[Metric, Figure]]] = field(default_factory=list)
    top_posts: list[PostMetrics] = field(default_factory=list)

    def value(self, metric: Metric) -> float | None:
        figure = self.figures.get(metric)
        return None if figure is None else figure.value


@dataclass(frozen=True, slots=True)
class TokenSet:
    """OAuth tokens as a platform returns them. Stored encrypted by the caller; never logged."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    token_type: str = "Bearer"
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # keep tokens out of reprs, tracebacks and logs
        return f"TokenSet(expires_at={self.expires_at!r}, scopes={self.scopes!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "scopes": list(self.scopes),
            "token_type": self.token_type,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenSet:
        expires = data.get("expires_at")
        return cls(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token"),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            scopes=tuple(data.get("scopes") or ()),
            token_type=data.get("token_type") or "Bearer",
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True, slots=True)
class AccountProfile:
    """Who a token belongs to on the platform."""

    external_id: str
    handle: str
    display_name: str
    url: str | None = None
    followers: int | None = None
    # Platform-specific ids the integration needs later (e.g. YouTube's uploads playlist).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PostSummary:
    post_id: str
    title: str | None
    published_at: datetime | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What to publish. `privacy` is one of the platform's `capabilities.privacy.values`."""

    title: str
    privacy: str
    description: str = ""
    tags: tuple[str, ...] = ()
    category_id: str | None = None
    made_for_kids: bool = False
    notify_subscribers: bool = True
    # Only for platforms whose `capabilities.scheduling.native`: publish at this
    # instant (aware, UTC) instead of at once; the post stays private until then.
    publish_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UploadResult:
    post_id: str
    url: str | None
    privacy: str
    # The platform published with a different privacy than asked (e.g. unverified
    # YouTube API projects force uploads to private): tell the user.
    privacy_forced: bool = False


class ByteSource(Protocol):
    """Where an upload's bytes come from: a file, or an HTTP download (Slack private URL)."""

    size: int
    mime_type: str

    def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        """Stream the bytes from `offset` to the end, in chunks; never the whole file at once."""


@runtime_checkable
class RangeByteSource(ByteSource, Protocol):
    """A ByteSource that reads any byte range in one call (a local file: one `pread`).

    For uploaders that frame each chunk inside a larger body (X's multipart appends):
    a chunk in one read and one hop off the event loop, instead of one per piece
    (`integrations.chunks.ChunkReader.read`; bench/x.py).
    """

    async def read_range(self, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length), fewer only where the source ends."""


@runtime_checkable
class HostedByteSource(ByteSource, Protocol):
    """A ByteSource whose bytes are also reachable at a public HTTPS URL.

    For platforms that fetch media themselves instead of receiving bytes (Instagram's
    `video_url`); `public_url` is None when the bytes exist only locally. Such a platform
    declares `media="public_url"` in its capabilities, and the caller then hands its
    `upload` a HostedByteSource (see agent.media_links).
    """

    public_url: str | None


class UploadCheckpoint(Protocol):
    """Durable upload state kept by the caller (the post row), so a restart resumes."""

    async def load(self) -> tuple[str | None, int]:
        """The saved session URI (or None) and the last offset the server confirmed."""

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        """Persist the session URI (a secret: store it encrypted) and the confirmed offset."""


ProgressCallback = Callable[[int, int], Awaitable[None]]  # (bytes confirmed, total)


class NativeScheduler(Protocol):
    """What a platform whose `capabilities.scheduling.native` also does: move the publish
    time of a post it holds, or clear it (`publish_at` None: the post stays private)."""

    async def set_publish_at(
        self, token: TokenSet, post_id: str, publish_at: datetime | None
    ) -> None: ...


@runtime_checkable
class SocialPlatform(Protocol):
    """What every platform integration provides. Methods raise `integrations.errors` only."""

    capabilities: PlatformCapabilities

    @property
    def scopes(self) -> Sequence[str]:
        """OAuth scopes the platform asks for (read-only, so a tuple or list satisfies it)."""

    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        """The platform's consent URL (PKCE S256 where supported)."""

    async def exchange_code(
        self, *, code: str, code_verifier: str, redirect_uri: str
    ) -> TokenSet: ...

    async def refresh(self, token: TokenSet) -> TokenSet:
        """A fresh token; NeedsRelink when the platform refuses the refresh token."""

    async def revoke(self, token: TokenSet) -> None: ...

    async def profile(self, token: TokenSet) -> AccountProfile: ...

    async def upload(
        self,
        token: TokenSet,
        source: ByteSource,
        request: UploadRequest,
        *,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Upload (resuming from the checkpoint) and publish with the requested metadata."""

    async def recent_posts(
        self, token: TokenSet, account: AccountProfile, *, limit: int = 50
    ) -> list[PostSummary]: ...

    async def post_metrics(self, token: TokenSet, post_ids: Sequence[str]) -> list[PostMetrics]:
        """Figures for many posts, batched as the platform allows (never one call per post)."""

    async def account_metrics(
        self, token: TokenSet, account: AccountProfile, *, start: date, end: date
    ) -> AccountMetrics: ...
