"""Process parts for Slack: Socket Mode, and draining the adapter's work when the web part stops."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.services import Part
from bot.slack.adapter import SlackAdapter

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

log = logging.getLogger(__name__)


class SlackSocketPart:
    """A process part that connects the adapter's bolt app through Socket Mode."""

    name = "slack-socket"

    def __init__(self, *, adapter: SlackAdapter, app_token: str) -> None:
        self._adapter = adapter
        self._app_token = app_token
        self._handler: AsyncSocketModeHandler | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        # Imported here: the web role (DrainingWebPart below) never opens Socket Mode.
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        bolt = await self._adapter.bolt()
        self._handler = AsyncSocketModeHandler(
            bolt.app, self._app_token, web_client=bolt.web_client
        )
        await self._handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("slack socket mode connected")

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self, grace: float) -> None:
        try:
            if self._handler is not None:
                await self._handler.close_async()  # type: ignore[no-untyped-call]
        finally:
            await self._adapter.aclose(grace)
            self._stopped.set()


class DrainingWebPart:
    """The web part, then the Slack adapter's in-flight work on stop (HTTP mode).

    Slack already has its 200 for every request whose work is still running, so
    stopping must let that work finish (within the grace period) before the
    process shuts its pools.
    """

    def __init__(self, *, web: Part, adapter: SlackAdapter) -> None:
        self._web = web
        self._adapter = adapter
        self.name = web.name

    async def start(self) -> None:
        await self._web.start()

    async def wait(self) -> None:
        await self._web.wait()

    async def stop(self, grace: float) -> None:
        try:
            await self._web.stop(grace)
        finally:
            await self._adapter.aclose(grace)
