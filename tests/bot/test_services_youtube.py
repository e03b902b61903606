"""Services builds the YouTube platform only when configured, and the web part mounts OAuth."""

from __future__ import annotations

from bot.assembly import build_part
from bot.services import Services
from integrations.base import SocialPlatform


async def test_youtube_platform_when_configured(make_settings):
    services = Services(settings=make_settings(google_client_id="cid", google_client_secret="sec"))
    try:
        platform = services.platforms.client("youtube")
        assert isinstance(platform, SocialPlatform)
        assert "sec" not in repr(platform._config)
        part = build_part(services, "web")
        app = part._server.config.app
        assert app.url_path_for("start", platform="youtube") == "/oauth/youtube/start"
        assert app.url_path_for("callback", platform="youtube") == "/oauth/youtube/callback"
        worker = build_part(services, "worker")
        assert [trigger.name for trigger in worker._triggers] == [
            "digests",
            "purge-expired",
            "refresh-tokens",
        ]
        assert set(worker._kinds) == {"upload", "digest", "refresh", "purge"}
    finally:
        await services.shutdown()


async def test_no_platforms_without_credentials(make_settings):
    services = Services(settings=make_settings())
    try:
        assert services.platforms.configured() == []
        assert services.notifiers.get("slack") is None
        worker = build_part(services, "worker")
        assert "refresh-tokens" not in [t.name for t in worker._triggers]
    finally:
        await services.shutdown()


def test_chunk_size_setting_must_fit_the_protocol(make_settings):
    import pytest
    from pydantic import ValidationError

    assert make_settings(youtube_upload_chunk_bytes=512 * 1024).youtube_upload_chunk_bytes == 524288
    with pytest.raises(ValidationError):
        make_settings(youtube_upload_chunk_bytes=1_000_000)
