"""The registry: every platform declares itself; only configured ones get a client."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from bot.settings import Settings
from integrations.base import SocialPlatform
from integrations.capabilities import (
    PRIVACY_WORDS,
    PlatformCapabilities,
    Privacy,
    QuotaCounter,
    QuotaSpec,
)
from integrations.errors import NotConfigured
from integrations.registry import PLUGINS, Platforms, Registry


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _clients_asked(settings: Settings) -> tuple[Platforms, list[str]]:
    asked: list[str] = []

    def client_for(caps: PlatformCapabilities) -> httpx.AsyncClient:
        asked.append(caps.name)
        return httpx.AsyncClient()

    return Registry().platforms(settings, client_for), asked


def test_every_plugin_declares_capabilities_without_credentials() -> None:
    platforms, asked = _clients_asked(_settings())
    assert platforms.names == [p.name for p in PLUGINS]
    assert platforms.configured() == [] and asked == []  # no credentials, no client, no pool
    for caps in platforms:
        assert caps.privacy.default in caps.privacy.values
        assert set(caps.privacy.values) <= set(PRIVACY_WORDS)
        assert caps.metrics.max_ids_per_call >= 1 and caps.metrics.max_period_days >= 1
        assert caps.quota.counters, f"{caps.name} declares no quota"
        for counter in caps.quota.counters:
            assert counter.limit > 0 and counter.source, counter
        with pytest.raises(NotConfigured, match=caps.display_name):
            platforms.client(caps.name)


def test_a_platform_is_built_only_when_its_settings_enable_it_and_hides_its_secret() -> None:
    platforms, asked = _clients_asked(
        _settings(instagram_client_id="1234", instagram_client_secret="very-secret-value")
    )
    assert platforms.configured() == ["instagram"] and asked == ["instagram"]
    client = platforms.client("instagram")
    assert isinstance(client, SocialPlatform)
    assert client.capabilities is platforms.capabilities("instagram")
    assert "very-secret-value" not in repr(client)
    url = client.authorization_url(state="s", code_verifier="v", redirect_uri="https://x/cb")
    assert url.startswith("https://www.instagram.com/oauth/authorize?client_id=1234&")


def test_words_resolve_to_platforms_and_settings_shape_capabilities() -> None:
    platforms, _ = _clients_asked(
        _settings(youtube_default_privacy="unlisted", youtube_daily_quota_units=50_000)
    )
    assert platforms.resolve(" YT ") == "youtube"
    assert platforms.resolve("Insta") == "instagram"
    assert platforms.resolve("myspace") is None
    youtube = platforms.capabilities("youtube")
    assert youtube.privacy.default == "unlisted"
    assert youtube.quota.counters[0].limit == 50_000
    assert youtube.quota.cost("recent_posts", 3) == {"units": 3}
    assert youtube.quota.cost("account_metrics") == {}  # Analytics draws on no Data API quota
    assert youtube.handle("@@acceptance") == "@acceptance"


def test_declarations_that_contradict_themselves_are_refused() -> None:
    with pytest.raises(ValueError):
        Privacy(values=("public",), default="private")
    with pytest.raises(ValueError):
        Privacy(values=("secret",), default="secret")
    with pytest.raises(ValueError, match="unknown counters"):
        QuotaSpec(counters=(QuotaCounter("units", "units", 1),), costs={"upload": {"posts": 1}})
    youtube = (
        Registry().platforms(_settings(), lambda caps: httpx.AsyncClient()).capabilities("youtube")
    )
    with pytest.raises(ValueError, match="names two platforms"):
        Platforms([youtube, replace(youtube, name="yt2")])  # both answer to "yt"
    with pytest.raises(ValueError, match="registered twice"):
        Registry([*PLUGINS, PLUGINS[0]])
