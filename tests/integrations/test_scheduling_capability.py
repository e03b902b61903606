"""Every platform declares how it schedules a post, with where that comes from."""

from __future__ import annotations

from integrations.registry import PLUGINS


def test_each_platform_declares_its_scheduling() -> None:
    native = {}
    for plugin in PLUGINS:
        caps = plugin.capabilities(plugin.settings_type())
        scheduling = caps.scheduling
        assert scheduling.source, caps.name
        if scheduling.native:
            # The privacy it publishes with must be one the platform has.
            assert scheduling.publishes_as in caps.privacy.values, caps.name
        else:
            assert scheduling.publishes_as is None, caps.name
        native[caps.name] = scheduling.native
    assert native == {"youtube": True, "instagram": False, "tiktok": False, "x": False}
