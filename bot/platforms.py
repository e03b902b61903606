"""Build the configured platform integrations from Settings.

Integrations may not import `bot`, so the wiring from settings to constructors
lives here; `bot.services` calls these when it assembles `platforms`.
"""

from __future__ import annotations

import httpx

from bot.settings import Settings
from integrations.instagram import InstagramPlatform


def build_instagram_platform(
    settings: Settings, *, http: httpx.AsyncClient | None = None
) -> InstagramPlatform | None:
    """An InstagramPlatform when INSTAGRAM_CLIENT_ID/SECRET are set, else None (feature off).

    Pass the process's shared `http` client; without one the platform creates its own
    client with conservative timeouts and closes it in `aclose()`.
    """
    if not settings.instagram_enabled:
        return None
    assert settings.instagram_client_id is not None
    assert settings.instagram_client_secret is not None
    owns_http = http is None
    client = http or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
    return InstagramPlatform(
        client,
        owns_http=owns_http,
        client_id=settings.instagram_client_id,
        client_secret=settings.instagram_client_secret.get_secret_value(),
        auth_url=settings.instagram_auth_url,
        token_url=settings.instagram_token_url,
        graph_base=settings.instagram_graph_base,
        api_version=settings.instagram_api_version,
        poll_interval_seconds=settings.instagram_publish_poll_seconds,
        publish_timeout_seconds=settings.instagram_publish_timeout_seconds,
    )
