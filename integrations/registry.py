"""The one list of platforms, and the directory of them a process runs with.

A platform is a plug-in: its package declares a `PlatformPlugin` (settings model,
capabilities, factory) and `PLUGINS` below names it once. Everything else asks a
`Platforms` directory: which words name a platform, what it can do, whether it
is configured here, and its client.

Adding a platform: write `integrations/<name>/` with a `plugin.py`, add its fake
under `tests/fakes/`, and add one line to `PLUGINS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel

from integrations.base import SocialPlatform
from integrations.capabilities import PlatformCapabilities
from integrations.errors import NotConfigured
from integrations.instagram.plugin import PLUGIN as INSTAGRAM
from integrations.plugin import PlatformPlugin
from integrations.tiktok.plugin import PLUGIN as TIKTOK
from integrations.x.plugin import PLUGIN as X
from integrations.youtube.plugin import PLUGIN as YOUTUBE

PLUGINS: tuple[PlatformPlugin[Any], ...] = (
    YOUTUBE,
    INSTAGRAM,
    TIKTOK,
    X,
)


class Platforms:
    """Every registered platform's capabilities, and a client for each configured one."""

    def __init__(
        self,
        capabilities: Sequence[PlatformCapabilities],
        clients: Mapping[str, SocialPlatform] | None = None,
    ) -> None:
        self._caps = {c.name: c for c in capabilities}
        self._clients = dict(clients or {})
        self._words: dict[str, str] = {}
        for cap in capabilities:
            for word in cap.words:
                if self._words.setdefault(word.lower(), cap.name) != cap.name:
                    raise ValueError(f"'{word}' names two platforms")
        unknown = set(self._clients) - set(self._caps)
        if unknown:
            raise ValueError(f"clients for unregistered platforms: {sorted(unknown)}")

    def __iter__(self) -> Iterator[PlatformCapabilities]:
        return iter(self._caps.values())

    def __contains__(self, name: object) -> bool:
        return name in self._caps

    @property
    def names(self) -> list[str]:
        return list(self._caps)

    def resolve(self, word: str) -> str | None:
        """The platform a word names ("YouTube", "yt", "ig", "twitter"), or None."""
        return self._words.get(word.strip().lower())

    def capabilities(self, name: str) -> PlatformCapabilities:
        return self._caps[name]

    def display(self, name: str) -> str:
        cap = self._caps.get(name)
        return cap.display_name if cap is not None else name

    def configured(self) -> list[str]:
        """Names of the platforms whose credentials are set, in registry order."""
        return [n for n in self._caps if n in self._clients]

    def get(self, name: str) -> SocialPlatform | None:
        return self._clients.get(name)

    def client(self, name: str) -> SocialPlatform:
        """The configured platform, or NotConfigured with a sentence for the chat."""
        client = self._clients.get(name)
        if client is None:
            raise NotConfigured(
                f"{self.display(name)} is not set up on this server "
                "(its app credentials are missing).",
                platform=name,
            )
        return client

    def clients(self) -> dict[str, SocialPlatform]:
        return dict(self._clients)


class Registry:
    """The plug-ins one process knows. The default is `PLUGINS`; tests may add their own."""

    def __init__(self, plugins: Sequence[PlatformPlugin[Any]] = PLUGINS) -> None:
        names = [p.name for p in plugins]
        if len(set(names)) != len(names):
            raise ValueError(f"a platform is registered twice: {names}")
        self.plugins: tuple[PlatformPlugin[Any], ...] = tuple(plugins)

    def platforms(
        self,
        settings: BaseModel,
        client_for: Callable[[PlatformCapabilities], httpx.AsyncClient],
    ) -> Platforms:
        """Capabilities of every plug-in; a client for each one whose settings enable it.

        `client_for` is asked only for enabled platforms, so an unconfigured one costs
        no connection pool.
        """
        caps: list[PlatformCapabilities] = []
        clients: dict[str, SocialPlatform] = {}
        for plugin in self.plugins:
            own = plugin.settings_from(settings)
            cap = plugin.capabilities(own)
            if cap.name != plugin.name:
                raise ValueError(f"plug-in {plugin.name!r} declares capabilities of {cap.name!r}")
            caps.append(cap)
            if plugin.enabled(own):
                clients[plugin.name] = plugin.build(own, cap, client_for(cap))
        return Platforms(caps, clients)
