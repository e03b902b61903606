"""X (formerly Twitter) as a plug-in: its settings, what it can do, and how to build it.

Figures (docs.x.com, checked against the current developer documentation):
- OAuth 2.0 Authorization Code with PKCE: consent at x.com/i/oauth2/authorize, tokens
  at api.x.com/2/oauth2/token (confidential clients: HTTP Basic), revocation at
  api.x.com/2/oauth2/revoke. Access tokens last two hours; `offline.access` brings a
  refresh token, which rotates on every refresh (store the returned one).
- Posting limits ("Rate limits", pay-per-use tables): POST /2/tweets allows 10,000
  per app per 24 hours and 100 per user per 15 minutes. The tiered tables still
  found in the docs say otherwise (Free: 17 per user and per app per 24 hours;
  Basic: 100 per user, 1,667 per app per 24 hours), so every figure is a setting.
  There is no documented per-user 24-hour figure on the current tables: the per-user
  counter is a rolling 15 minutes by default (X_USER_POSTS_WINDOW_SECONDS).
- Metrics: GET /2/tweets takes at most 100 ids; non-public and organic metrics
  exist only for the account's own posts of the last 30 days, so periods are capped
  at 30 days. Timelines (GET /2/users/:id/tweets) page 5 to 100 posts.
- Media: chunked upload on the dedicated v2 endpoints; videos up to 512 MB
  (`total_bytes` of initialize), segments up to 5 MB, segment_index 0-999.
- Text: 280 weighted characters, a URL counts 23 (twitter-text v3, see text.py).
- Every post is public: X has no per-post privacy.
"""

from __future__ import annotations

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
from integrations.x.text import MAX_WEIGHTED_LENGTH, weighted_length
from integrations.x.upload import MAX_SEGMENT_BYTES

if TYPE_CHECKING:
    import httpx

    from integrations.base import SocialPlatform

DAY = 24 * 3600


class XSettings(BaseModel):
    """X_* environment variables."""

    x_client_id: str | None = None
    x_client_secret: SecretStr | None = None
    x_auth_url: str = "https://x.com/i/oauth2/authorize"
    x_token_url: str = "https://api.x.com/2/oauth2/token"
    x_revoke_url: str = "https://api.x.com/2/oauth2/revoke"
    x_api_base: str = "https://api.x.com"
    x_upload_segment_bytes: int = Field(default=4 * 1024 * 1024, ge=1, le=MAX_SEGMENT_BYTES)
    x_processing_timeout_seconds: float = Field(default=600.0, gt=0)
    # A spent rate-limit window resetting within this many seconds is waited for;
    # a later reset is reported to the person instead.
    x_rate_limit_max_wait_seconds: float = Field(default=10.0, ge=0)
    x_user_posts_limit: int = Field(default=100, ge=1)
    x_user_posts_window_seconds: int = Field(default=15 * 60, ge=60)
    x_app_posts_per_day: int = Field(default=10_000, ge=1)


def capabilities(settings: XSettings) -> PlatformCapabilities:
    return PlatformCapabilities(
        name="x",
        display_name="X",
        colour=0x0F1419,
        aliases=("twitter",),
        account_prefix="x",
        privacy=Privacy(values=("public",), default="public"),
        media="push",
        metrics=MetricsLimits(max_ids_per_call=100, max_period_days=30, recent_page_size=100),
        caption_rules=CaptionRules(caption_max_chars=MAX_WEIGHTED_LENGTH, length=weighted_length),
        quota=QuotaSpec(
            counters=(
                QuotaCounter(
                    "user_posts",
                    "posts",
                    settings.x_user_posts_limit,
                    per_account=True,
                    rolling_seconds=settings.x_user_posts_window_seconds,
                    source="POST /2/tweets: 100 per user per 15 min (docs.x.com rate limits)",
                ),
                QuotaCounter(
                    "app_posts",
                    "posts by this app",
                    settings.x_app_posts_per_day,
                    rolling_seconds=DAY,
                    source="POST /2/tweets: 10,000 per app per 24 h (docs.x.com rate limits)",
                ),
            ),
            costs={"upload": {"user_posts": 1, "app_posts": 1}},
        ),
    )


def build(
    settings: XSettings, caps: PlatformCapabilities, http: httpx.AsyncClient
) -> SocialPlatform:
    from integrations.x.platform import XConfig, XPlatform

    config = XConfig(
        client_id=configured(settings.x_client_id),
        client_secret=configured_secret(settings.x_client_secret),
        auth_url=settings.x_auth_url,
        token_url=settings.x_token_url,
        revoke_url=settings.x_revoke_url,
        api_base=settings.x_api_base,
        segment_bytes=settings.x_upload_segment_bytes,
        processing_timeout_seconds=settings.x_processing_timeout_seconds,
        rate_limit_max_wait_seconds=settings.x_rate_limit_max_wait_seconds,
    )
    return XPlatform(config=config, http=http, capabilities=caps)


PLUGIN = PlatformPlugin(
    name="x",
    display_name="X",
    settings_type=XSettings,
    required=(("x_client_id", "x_client_secret"),),
    capabilities=capabilities,
    build=build,
)
