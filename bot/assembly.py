"""Construct each runnable part from Services. The one place that knows every part."""

from __future__ import annotations

from bot.core.messages import IncomingMessage, Reply, ReplySink
from bot.services import Part, Services


class PartUnavailable(Exception):
    """A part was asked for whose feature is not configured or not built."""


async def _placeholder_handler(message: IncomingMessage, sink: ReplySink) -> None:
    await sink.send(Reply("The conversation core is not wired in yet."))


def build_part(services: Services, name: str) -> Part:
    settings = services.settings
    if name == "web":
        from bot.web import WebPart, create_app

        return WebPart(create_app(services), host=settings.host, port=settings.port)
    if name == "worker":
        from bot.worker import WorkerPart

        return WorkerPart([])
    if name == "shell":
        from bot.shell import ShellPart

        return ShellPart(_placeholder_handler)
    if name == "discord":
        if settings.discord_token is None:
            raise PartUnavailable("Discord is off: set DISCORD_TOKEN to run the 'discord' part")
        from bot.assembly import build_chatops  # type: ignore[attr-defined]
        from bot.discord import DiscordPart

        return DiscordPart(
            token=settings.discord_token.get_secret_value(),
            handler=build_chatops(services),
            api_base=settings.discord_api_base,
        )
    raise PartUnavailable(f"the '{name}' part is not available in this build")
