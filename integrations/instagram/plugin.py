"""Instagram as a plug-in: its settings, what it can do, and how to build it.

Figures (developers.facebook.com, Instagram Platform docs):
- Publishing: at most 100 API-published posts per account in a moving 24 hours
  (`content_publishing_limit`); INSTAGRAM_PUBLISHES_PER_DAY may set a lower cap.
- Platform rate limits: 200 calls per hour per app user.
- Every Reel published through the API is public: there is no privacy choice.
- The video is fetched by Instagram from a public URL (`video_url`).
- `/me/insights` refuses a since..until span over 30 days; multi-id reads take 50 ids.
- Long-lived tokens last 60 days and die unless refreshed: renew within a week.
- Captions: 2,200 characters, 30 hashtags, 20 @mentions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, SecretStr

from integrations.capabilities import (
    CaptionRules,
    MetricsLimits,
    PlatformCapabilities,
    Privacy,
    QuotaCounter,
    QuotaSpec,
)
from integrations.plugin import PlatformPlugin, configured, configured_secret

if TYPE_CHECKING:
    import httpx

    from integrations.base import SocialPlatform

DAY = 24 * 3600


class InstagramSettings(BaseModel):
    """INSTAGRAM_* environment variables."""

    instagram_client_id: str | None = None
    instagram_client_secret: SecretStr | None = None
    instagram_auth_url: str = "https://www.instagram.com/oauth/authorize"
    instagram_token_url: str = "https://api.instagram.com/oauth/access_token"
    instagram_graph_base: str = "https://graph.instagram.com"
    # Graph API version pinned in request paths ("" = unversioned: the app's default).
    instagram_api_version: str = "v25.0"
    instagram_publish_poll_seconds: float = 5.0
    instagram_publish_timeout_seconds: float = 600.0
    instagram_publishes_per_day: int = Field(default=100, ge=1)
    instagram_calls_per_hour: int = Field(default=200, ge=1)


def capabilities(settings: InstagramSettings) -> PlatformCapabilities:
    return PlatformCapabilities(
        name="instagram",
        display_name="Instagram",
        colour=0xE1306C,
        aliases=("ig", "insta"),
        account_prefix="ig",
        privacy=Privacy(values=("public",), default="public"),
        media="public_url",
        metrics=MetricsLimits(max_ids_per_call=50, max_period_days=30, recent_page_size=50),
        caption_rules=CaptionRules(caption_max_chars=2200, hashtags_max=30, mentions_max=20),
        refresh_ahead=timedelta(days=7),
        quota=QuotaSpec(
            counters=(
                QuotaCounter(
                    "publishes",
                    "publishes",
                    settings.instagram_publishes_per_day,
                    per_account=True,
                    rolling_seconds=DAY,
                    source="content_publishing_limit: 100 per account per moving 24 h",
                ),
                QuotaCounter(
                    "calls",
                    "API calls",
                    settings.instagram_calls_per_hour,
                    per_account=True,
                    rolling_seconds=3600,
                    source="Platform rate limits: 200 calls per app user per hour",
                ),
            ),
            costs={
                # container, status polls (a few), publish, permalink
                "upload": {"publishes": 1, "calls": 4},
                "profile": {"calls": 1},
                "recent_posts": {"calls": 1},
                "post_metrics": {"calls": 1},
                "account_metrics": {"calls": 3},
            },
        ),
    )


def build(
    settings: InstagramSettings, caps: PlatformCapabilities, http: httpx.AsyncClient
) -> SocialPlatform:
    from integrations.instagram.platform import InstagramPlatform

    return InstagramPlatform(
        http,
        capabilities=caps,
        client_id=configured(settings.instagram_client_id),
        client_secret=configured_secret(settings.instagram_client_secret),
        auth_url=settings.instagram_auth_url,
        token_url=settings.instagram_token_url,
        graph_base=settings.instagram_graph_base,
        api_version=settings.instagram_api_version,
        poll_interval_seconds=settings.instagram_publish_poll_seconds,
        publish_timeout_seconds=settings.instagram_publish_timeout_seconds,
    )


PLUGIN = PlatformPlugin(
    name="instagram",
    display_name="Instagram",
    settings_type=InstagramSettings,
    required=(("instagram_client_id", "instagram_client_secret"),),
    capabilities=capabilities,
    build=build,
)
