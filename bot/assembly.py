"""Construct each runnable part from Services. The one place that knows every part."""

from __future__ import annotations

from typing import Any

from bot.core.messages import IncomingMessage, Reply, ReplySink
from bot.services import Part, Services


class PartUnavailable(Exception):
    """A part was asked for whose feature is not configured or not built."""


async def _placeholder_handler(message: IncomingMessage, sink: ReplySink) -> None:
    await sink.send(Reply("The conversation core is not wired in yet."))


_OPS: dict[int, Any] = {}


def _platform_ops(services: Services) -> Any:
    """agent.platform_ops.PlatformOps over this process's resources, built on first use
    (the pool only exists once Services.initialize() ran)."""
    ops = _OPS.get(id(services))
    if ops is None:
        from agent.context import AgentConfig, Deps
        from agent.platform_ops import PlatformOps

        settings = services.settings
        deps = getattr(services, "deps", None) or Deps(
            pool=services.db.pool,
            redis=services.redis,
            cipher=services.cipher,
            config=AgentConfig(
                public_base_url=settings.public_base_url,
                youtube_default_privacy=settings.youtube_default_privacy,
            ),
            platforms=services.platforms,
            budgets=getattr(services, "budgets", None),
        )
        ops = _OPS[id(services)] = PlatformOps(deps=deps)
    return ops


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
        from bot.worker import PeriodicJob, WorkerPart

        jobs: list[PeriodicJob] = []
        if services.platforms:
            # Uploads a dead worker left half-done continue from the platform's offset.
            jobs.append(
                PeriodicJob(
                    "resume-uploads", 120.0, lambda: _platform_ops(services).resume_unfinished()
                )
            )
        return WorkerPart(jobs)
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
