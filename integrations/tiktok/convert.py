"""Pure converters: TikTok JSON -> the normalized types of `integrations.base`.

A figure TikTok does not return is left absent (never 0); each kept figure names the
TikTok field it came from. No I/O here, so every shape is testable on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.base import (
    AccountProfile,
    Figure,
    Metric,
    PostMetrics,
    PostSummary,
    TokenSet,
    with_engagement_rate,
)
from integrations.errors import PlatformUnavailable
from integrations.tiktok._errors import PLATFORM

# The scope each user field needs (tiktok-api-v2-get-user-info).
USER_FIELD_SCOPES: dict[str, str] = {
    "open_id": "user.info.basic",
    "display_name": "user.info.basic",
    "username": "user.info.profile",
    "profile_deep_link": "user.info.profile",
    "follower_count": "user.info.stats",
    "likes_count": "user.info.stats",
    "video_count": "user.info.stats",
}
PROFILE_FIELDS = tuple(USER_FIELD_SCOPES)
STATS_FIELDS = ("open_id", "follower_count", "likes_count", "video_count")
VIDEO_FIELDS = (
    "id,title,create_time,share_url,cover_image_url,view_count,like_count,comment_count,share_count"
)
LIST_FIELDS = "id,title,create_time,share_url"

# TikTok video counter -> normalized metric.
VIDEO_METRICS: dict[str, Metric] = {
    "view_count": Metric.VIEWS,
    "like_count": Metric.LIKES,
    "comment_count": Metric.COMMENTS,
    "share_count": Metric.SHARES,
}
ACCOUNT_METRICS: dict[str, Metric] = {
    "follower_count": Metric.FOLLOWERS,
    "likes_count": Metric.LIKES,
}


def user_fields(wanted: Sequence[str], scopes: Sequence[str]) -> list[str]:
    """The wanted user fields this token may read (all of them when its scopes are unknown)."""
    if not scopes:
        return list(wanted)
    return [f for f in wanted if USER_FIELD_SCOPES[f] in scopes]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def token_set_from(
    raw: Mapping[str, Any], *, now: datetime, previous: TokenSet | None = None
) -> TokenSet:
    """A token answer of /v2/oauth/token/. A refresh may rotate the refresh token: the one
    TikTok returns replaces ours; ours is kept only when it returns none."""
    access = _text(raw.get("access_token"))
    if access is None:
        raise PlatformUnavailable(
            "TikTok's token answer had no token; try again later.",
            platform=PLATFORM,
            reason="bad_response",
        )
    expires_in = _number(raw.get("expires_in"))
    refresh_in = _number(raw.get("refresh_expires_in"))
    scope = _text(raw.get("scope"))
    extra = dict(previous.extra) if previous else {}
    if _text(raw.get("open_id")):
        extra["open_id"] = raw["open_id"]
    if refresh_in is not None:
        extra["refresh_expires_at"] = (now + timedelta(seconds=refresh_in)).isoformat()
    return TokenSet(
        access_token=access,
        refresh_token=_text(raw.get("refresh_token"))
        or (previous.refresh_token if previous else None),
        expires_at=now + timedelta(seconds=expires_in) if expires_in is not None else None,
        scopes=(
            tuple(s.strip() for s in scope.split(",") if s.strip())
            if scope
            else (previous.scopes if previous else ())
        ),
        token_type="Bearer",  # noqa: S106 (a scheme name, not a secret)
        extra=extra,
    )


def profile_from(user: Mapping[str, Any]) -> AccountProfile:
    """The `data.user` object of /v2/user/info/."""
    open_id = _text(user.get("open_id"))
    if open_id is None:
        raise PlatformUnavailable(
            "TikTok's profile answer had no account id; try again later.",
            platform=PLATFORM,
            reason="bad_response",
        )
    username = _text(user.get("username"))
    display = _text(user.get("display_name")) or username or open_id
    followers = _number(user.get("follower_count"))
    url = _text(user.get("profile_deep_link")) or (
        f"https://www.tiktok.com/@{username}" if username else None
    )
    extra = {k: user[k] for k in ("video_count", "likes_count") if _number(user.get(k)) is not None}
    return AccountProfile(
        external_id=open_id,
        handle=username or display,
        display_name=display,
        url=url,
        followers=int(followers) if followers is not None else None,
        extra=extra,
    )


def account_figures(user: Mapping[str, Any]) -> dict[Metric, Figure]:
    """Lifetime totals of /v2/user/info/ as figures (followers, likes received)."""
    figures: dict[Metric, Figure] = {}
    for field, metric in ACCOUNT_METRICS.items():
        value = _number(user.get(field))
        if value is not None:
            figures[metric] = Figure(value, field)
    return figures


def _created(video: Mapping[str, Any]) -> datetime | None:
    seconds = _number(video.get("create_time"))
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds is not None else None


def summary_from(video: Mapping[str, Any]) -> PostSummary | None:
    """One video of /v2/video/list/; None when it has no id."""
    video_id = _text(video.get("id"))
    if video_id is None:
        return None
    return PostSummary(
        post_id=video_id,
        title=_text(video.get("title")),
        published_at=_created(video),
        url=_text(video.get("share_url")),
    )


def post_metrics_from(video: Mapping[str, Any], *, as_of: datetime) -> PostMetrics | None:
    """One video of /v2/video/query/ with its counters; None when it has no id."""
    video_id = _text(video.get("id"))
    if video_id is None:
        return None
    figures: dict[Metric, Figure] = {}
    for field, metric in VIDEO_METRICS.items():
        value = _number(video.get(field))
        if value is not None:
            figures[metric] = Figure(value, field)
    return PostMetrics(
        platform=PLATFORM,
        post_id=video_id,
        as_of=as_of,
        figures=with_engagement_rate(figures),
        title=_text(video.get("title")),
        url=_text(video.get("share_url")),
        published_at=_created(video),
        thumbnail_url=_text(video.get("cover_image_url")),
    )


@dataclass(frozen=True, slots=True)
class CreatorInfo:
    """What /v2/post/publish/creator_info/query/ says this creator may post now."""

    username: str | None
    nickname: str | None
    privacy_levels: tuple[str, ...]
    comment_disabled: bool
    duet_disabled: bool
    stitch_disabled: bool
    max_duration_seconds: int | None


def creator_from(data: Mapping[str, Any]) -> CreatorInfo:
    levels = data.get("privacy_level_options")
    longest = _number(data.get("max_video_post_duration_sec"))
    return CreatorInfo(
        username=_text(data.get("creator_username")),
        nickname=_text(data.get("creator_nickname")),
        privacy_levels=tuple(str(v) for v in levels) if isinstance(levels, list) else (),
        comment_disabled=data.get("comment_disabled") is True,
        duet_disabled=data.get("duet_disabled") is True,
        stitch_disabled=data.get("stitch_disabled") is True,
        max_duration_seconds=int(longest) if longest is not None else None,
    )


@dataclass(frozen=True, slots=True)
class PublishStatus:
    """One answer of /v2/post/publish/status/fetch/."""

    status: str
    fail_reason: str
    post_ids: tuple[str, ...]
    uploaded_bytes: int | None


def status_from(data: Mapping[str, Any]) -> PublishStatus:
    # "publicaly_available_post_id" is TikTok's spelling.
    ids = data.get("publicaly_available_post_id")
    uploaded = _number(data.get("uploaded_bytes"))
    return PublishStatus(
        status=str(data.get("status") or ""),
        fail_reason=str(data.get("fail_reason") or ""),
        post_ids=tuple(str(i) for i in ids if str(i)) if isinstance(ids, list) else (),
        uploaded_bytes=int(uploaded) if uploaded is not None else None,
    )
