"""Build the configured platform integrations from Settings.

Integrations may not import `bot`, so the wiring from settings to their
constructors lives here; `bot.services` calls `build_platforms` once per process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from bot.settings import Settings
from integrations.base import SocialPlatform

if TYPE_CHECKING:  # imported when built: an unconfigured platform costs no import
    from integrations.instagram import InstagramPlatform
    from integrations.youtube import YouTubePlatform


def build_youtube_platform(
    settings: Settings, *, http: httpx.AsyncClient
) -> YouTubePlatform | None:
    """A YouTubePlatform when GOOGLE_CLIENT_ID/SECRET are set, else None (feature off)."""
    if settings.google_client_id is None or settings.google_client_secret is None:
        return None
    from integrations.youtube import YouTubeConfig, YouTubePlatform

    config = YouTubeConfig(
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret.get_secret_value(),
        auth_url=settings.google_auth_url,
        token_url=settings.google_token_url,
        revoke_url=settings.google_revoke_url,
        api_base=settings.youtube_api_base,
        upload_base=settings.youtube_upload_base,
        analytics_base=settings.youtube_analytics_base,
        chunk_bytes=settings.youtube_upload_chunk_bytes,
        upload_cost_units=settings.youtube_upload_cost_units,
    )
    return YouTubePlatform(config=config, http=http)


def build_instagram_platform(
    settings: Settings, *, http: httpx.AsyncClient
) -> InstagramPlatform | None:
    """An InstagramPlatform when INSTAGRAM_CLIENT_ID/SECRET are set, else None (feature off)."""
    if settings.instagram_client_id is None or settings.instagram_client_secret is None:
        return None
    from integrations.instagram import InstagramPlatform

    return InstagramPlatform(
        http,
        client_id=settings.instagram_client_id,
        client_secret=settings.instagram_client_secret.get_secret_value(),
        auth_url=settings.instagram_auth_url,
        token_url=settings.instagram_token_url,
        graph_base=settings.instagram_graph_base,
        api_version=settings.instagram_api_version,
        poll_interval_seconds=settings.instagram_publish_poll_seconds,
        publish_timeout_seconds=settings.instagram_publish_timeout_seconds,
    )


def build_platforms(
    settings: Settings, client_for: Callable[[str], httpx.AsyncClient]
) -> dict[str, SocialPlatform]:
    """The SocialPlatform of every platform whose credentials are set.

    A client is asked for only when its platform is on, so an unconfigured
    platform costs no connection pool.
    """
    platforms: dict[str, SocialPlatform] = {}
    if settings.youtube_enabled:
        youtube = build_youtube_platform(settings, http=client_for("youtube"))
        if youtube is not None:
            platforms["youtube"] = youtube
    if settings.instagram_enabled:
        instagram = build_instagram_platform(settings, http=client_for("instagram"))
        if instagram is not None:
            platforms["instagram"] = instagram
    return platforms
