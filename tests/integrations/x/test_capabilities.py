"""What X declares: names, privacy, media, batch sizes, 30-day period, caption rules, quota."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from integrations.registry import PLUGINS, Platforms
from integrations.x.plugin import PLUGIN, XSettings, capabilities


def test_names_privacy_media_and_metrics() -> None:
    caps = capabilities(XSettings())
    assert (caps.name, caps.display_name, caps.aliases) == ("x", "X", ("twitter",))
    assert caps.privacy.values == ("public",) and caps.privacy.fixed
    assert caps.media == "push"
    assert caps.metrics.max_ids_per_call == 100 and caps.metrics.max_period_days == 30
    assert caps.metrics.recent_page_size == 100
    assert caps.refresh_ahead is None  # refresh tokens live on; access tokens renew on use
    platforms = Platforms([p.capabilities(p.settings_type()) for p in PLUGINS])
    assert platforms.resolve("Twitter") == "x" and platforms.resolve("X") == "x"
    assert platforms.display("x") == "X"


def test_quota_spec_and_overrides() -> None:
    quota = capabilities(XSettings()).quota
    user, app = quota.counters
    assert (user.name, user.limit, user.per_account, user.rolling_seconds) == (
        "user_posts",
        100,
        True,
        900,
    )
    assert (app.name, app.limit, app.per_account, app.rolling_seconds) == (
        "app_posts",
        10_000,
        False,
        86400,
    )
    assert quota.cost("upload") == {"user_posts": 1, "app_posts": 1}
    assert quota.cost("post_metrics") == {}
    # A Free-tier app: 17 posts per user and per app per 24 hours.
    free = capabilities(
        XSettings(x_user_posts_limit=17, x_user_posts_window_seconds=86400, x_app_posts_per_day=17)
    ).quota
    assert [(c.limit, c.rolling_seconds) for c in free.counters] == [(17, 86400), (17, 86400)]


def test_enabled_only_with_id_and_secret_and_no_secret_in_reprs() -> None:
    assert not PLUGIN.enabled(XSettings(x_client_id="id"))
    assert PLUGIN.missing(XSettings(x_client_id="id")) == ["x_client_secret"]
    settings = XSettings(x_client_id="id", x_client_secret=SecretStr("s3cr3t-value"))
    assert PLUGIN.enabled(settings)
    platform = PLUGIN.build(settings, capabilities(settings), httpx.AsyncClient())
    assert "s3cr3t-value" not in repr(platform) and "s3cr3t-value" not in repr(settings)


def test_registered_once() -> None:
    assert [p.name for p in PLUGINS].count("x") == 1
