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
        from bot.oauth_web import build_oauth_router
        from bot.web import WebPart, create_app

        oauth = build_oauth_router(
            pool=lambda: services.db.pool,
            cipher=services.cipher,
            platforms=services.platforms,
            notifiers=services.notifiers,
            public_base_url=settings.public_base_url,
        )
        app = create_app(services, routers=[oauth])
        return WebPart(app, host=settings.host, port=settings.port)
    if name == "worker":
        from bot.worker import WorkerPart

        return WorkerPart([])
    if name == "shell":
        from bot.shell import ShellPart

        return ShellPart(_placeholder_handler)
    raise PartUnavailable(f"the '{name}' part is not available in this build")
