"""YouTube as a plug-in: its settings, what it can do, and how to build it.

Figures (developers.google.com/youtube/v3):
- Data API quota: 10,000 units a day per Google Cloud project by default, reset at
  midnight Pacific time; videos.insert costs 1,600 units; list calls 1 unit a page.
  Analytics reports and OAuth calls do not draw on it.
- playlistItems.list and videos.list take at most 50 ids or items a call.
- Analytics reports reach back years; we offer at most 365 days.
- Titles 100 characters, descriptions 5,000, tags 500 in all; no angle brackets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, SecretStr, field_validator

from integrations.capabilities import (
    CaptionRules,
    MetricsLimits,
    PlatformCapabilities,
    Privacy,
    QuotaCounter,
    QuotaSpec,
    Scheduling,
)
from integrations.plugin import PlatformPlugin, configured, configured_secret
from integrations.youtube.upload import CHUNK_GRANULARITY, DEFAULT_CHUNK_BYTES

if TYPE_CHECKING:
    import httpx

    from integrations.base import SocialPlatform

PACIFIC = "America/Los_Angeles"


class YouTubeSettings(BaseModel):
    """GOOGLE_* and YOUTUBE_* environment variables."""

    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    google_revoke_url: str = "https://oauth2.googleapis.com/revoke"
    youtube_api_base: str = "https://www.googleapis.com/youtube/v3"
    youtube_upload_base: str = "https://www.googleapis.com/upload"
    youtube_analytics_base: str = "https://youtubeanalytics.googleapis.com/v2"
    youtube_upload_chunk_bytes: int = DEFAULT_CHUNK_BYTES
    youtube_default_privacy: str = "private"
    youtube_daily_quota_units: int = Field(default=10_000, ge=1)
    youtube_upload_cost_units: int = Field(default=1_600, ge=0)
    youtube_daily_upload_limit: int = Field(default=100, ge=1)

    @field_validator("youtube_upload_chunk_bytes")
    @classmethod
    def _chunk_granularity(cls, value: int) -> int:
        if value <= 0 or value % CHUNK_GRANULARITY:
            raise ValueError(f"must be a positive multiple of {CHUNK_GRANULARITY} (256 KiB)")
        return value


def capabilities(settings: YouTubeSettings) -> PlatformCapabilities:
    return PlatformCapabilities(
        name="youtube",
        display_name="YouTube",
        colour=0xFF0000,
        aliases=("yt",),
        account_prefix="yt",
        privacy=Privacy(
            values=("private", "unlisted", "public"), default=settings.youtube_default_privacy
        ),
        media="push",
        metrics=MetricsLimits(
            max_ids_per_call=50,
            max_period_days=365,
            recent_page_size=50,
            # Analytics names it estimatedMinutesWatched; average duration derives from it.
            estimated=frozenset({"watch_time_minutes", "avg_view_duration_seconds"}),
        ),
        caption_rules=CaptionRules(
            title_max_chars=100,
            description_max_chars=5000,
            tags_max_chars_total=500,
            forbidden_chars="<>",
        ),
        quota=QuotaSpec(
            counters=(
                QuotaCounter(
                    "units",
                    "quota units",
                    settings.youtube_daily_quota_units,
                    reset_zone=PACIFIC,
                    source="Data API default quota per project, reset at Pacific midnight",
                ),
                QuotaCounter(
                    "uploads",
                    "uploads",
                    settings.youtube_daily_upload_limit,
                    reset_zone=PACIFIC,
                    source="YOUTUBE_DAILY_UPLOAD_LIMIT (our cap, counted on the same day)",
                ),
            ),
            costs={
                "upload": {"units": settings.youtube_upload_cost_units, "uploads": 1},
                "profile": {"units": 1},
                "recent_posts": {"units": 1},
                "post_metrics": {"units": 1},
                "reschedule": {"units": 51},  # videos.list (1) + videos.update (50)
            },
        ),
        scheduling=Scheduling(
            native=True,
            source="videos.insert status.publishAt (the video must be private until then)",
            publishes_as="public",
        ),
    )


def build(
    settings: YouTubeSettings, caps: PlatformCapabilities, http: httpx.AsyncClient
) -> SocialPlatform:
    from integrations.youtube.platform import YouTubeConfig, YouTubePlatform

    config = YouTubeConfig(
        client_id=configured(settings.google_client_id),
        client_secret=configured_secret(settings.google_client_secret),
        auth_url=settings.google_auth_url,
        token_url=settings.google_token_url,
        revoke_url=settings.google_revoke_url,
        api_base=settings.youtube_api_base,
        upload_base=settings.youtube_upload_base,
        analytics_base=settings.youtube_analytics_base,
        chunk_bytes=settings.youtube_upload_chunk_bytes,
    )
    return YouTubePlatform(config=config, http=http, capabilities=caps)


PLUGIN = PlatformPlugin(
    name="youtube",
    display_name="YouTube",
    settings_type=YouTubeSettings,
    required=(("google_client_id", "google_client_secret"),),
    capabilities=capabilities,
    build=build,
)
