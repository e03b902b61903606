"""Platforms for tests, built exactly as production builds them: through their plug-ins."""

from __future__ import annotations

from typing import Any

import httpx

from integrations.base import SocialPlatform
from integrations.plugin import PlatformPlugin
from integrations.registry import Platforms, Registry


def build(plugin: PlatformPlugin[Any], http: httpx.AsyncClient, **settings: Any) -> Any:
    """The plug-in's client from these settings (its production factory)."""
    own = plugin.settings_type(**settings)
    assert plugin.enabled(own), f"{plugin.name} settings do not enable it: {plugin.missing(own)}"
    return plugin.build(own, plugin.capabilities(own), http)


class Unused:
    """Stands in for a configured platform whose client a test must never call."""

    def __init__(self, capabilities: Any) -> None:
        self.capabilities = capabilities

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call to the {self.capabilities.name} client: {name}")


def directory(
    *clients: SocialPlatform,
    configured: tuple[str, ...] | list[str] = (),
    registry: Registry | None = None,
) -> Platforms:
    """Every registered platform's capabilities (defaults), with these configured clients.

    `configured` names platforms to mark configured with a client that must not be called
    (for tests whose platform work is a fake PlatformOps).
    """
    plugins = (registry or Registry()).plugins
    given: dict[str, Any] = {c.capabilities.name: c for c in clients}
    for plugin in plugins:
        if plugin.name in configured and plugin.name not in given:
            given[plugin.name] = Unused(plugin.capabilities(plugin.settings_type()))
    caps = [
        given[p.name].capabilities if p.name in given else p.capabilities(p.settings_type())
        for p in plugins
    ]
    return Platforms(caps, given)
