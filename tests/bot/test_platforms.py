"""bot.platforms: Instagram is built only when its credentials are configured."""

from __future__ import annotations

from bot.platforms import build_instagram_platform
from bot.settings import Settings
from integrations.base import SocialPlatform
from integrations.http import Guards, make_client


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_instagram_off_without_credentials() -> None:
    settings = _settings(instagram_client_id=None, instagram_client_secret=None)
    async with make_client(platform="instagram", guards=Guards()) as http:
        assert build_instagram_platform(settings, http=http) is None


async def test_instagram_built_from_settings_without_leaking_the_secret() -> None:
    settings = _settings(
        instagram_client_id="1234",
        instagram_client_secret="very-secret-value",
        instagram_graph_base="http://127.0.0.1:1",
        instagram_api_version="v25.0",
    )
    async with make_client(platform="instagram", guards=Guards()) as http:
        platform = build_instagram_platform(settings, http=http)
        assert isinstance(platform, SocialPlatform)
        assert platform.name == "instagram"
        assert "very-secret-value" not in repr(platform)
        url = platform.authorization_url(state="s", code_verifier="v", redirect_uri="https://x/cb")
        assert url.startswith("https://www.instagram.com/oauth/authorize?client_id=1234&")
        assert platform._graph.url("me") == "http://127.0.0.1:1/v25.0/me"
