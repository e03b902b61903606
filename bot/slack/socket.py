"""Socket Mode: the same bolt app over a WebSocket, for use without a public URL."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.slack.adapter import SlackAdapter

log = logging.getLogger(__name__)


class SlackSocketPart:
    """A process part that connects the adapter's bolt app through Socket Mode."""

    name = "slack-socket"

    def __init__(self, *, adapter: SlackAdapter, app_token: str) -> None:
        self._adapter = adapter
        self._handler = AsyncSocketModeHandler(
            adapter.app, app_token, web_client=adapter.web_client
        )
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        await self._adapter.start()
        await self._handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("slack socket mode connected")

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self, grace: float) -> None:
        try:
            await self._handler.close_async()  # type: ignore[no-untyped-call]
        finally:
            await self._adapter.aclose(grace)
            self._stopped.set()
