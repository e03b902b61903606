"""Construct each runnable part from Services. The one place that knows every part."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from bot.core.messages import IncomingMessage, Reply, ReplySink
from bot.services import Part, Services

if TYPE_CHECKING:
    from fastapi import APIRouter

    from bot.slack import SlackAdapter


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
        web = WebPart(
            create_app(services, routers=[oauth, *_web_routers(services)]),
            host=settings.host,
            port=settings.port,
        )
        slack = _slack_adapters.get(services)
        if slack is not None:
            from bot.slack.socket import DrainingWebPart

            return DrainingWebPart(web=web, adapter=slack)
        return web
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
    if name == "slack-socket":
        if not settings.slack_enabled or settings.slack_app_token is None:
            raise PartUnavailable("Slack Socket Mode needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN")
        from bot.slack.socket import SlackSocketPart

        return SlackSocketPart(
            adapter=_slack_adapter(services),
            app_token=settings.slack_app_token.get_secret_value(),
        )
    raise PartUnavailable(f"the '{name}' part is not available in this build")


class _PlaceholderConversation:
    """Stands in for ChatOpsService until the conversation core is wired in."""

    async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
        await _placeholder_handler(message, sink)

    async def resolve_approval(
        self,
        *,
        frontend: str,
        workspace_id: str,
        user_id: str,
        action_id: str,
        approved: bool,
        sink: ReplySink,
    ) -> None:
        await sink.send_private(Reply("The conversation core is not wired in yet."))


# One Slack adapter per Services (the web part and the socket part share it).
_slack_adapters: weakref.WeakKeyDictionary[Services, SlackAdapter] = weakref.WeakKeyDictionary()


def _slack_adapter(services: Services) -> SlackAdapter:
    from bot.slack import build_slack_adapter

    adapter = _slack_adapters.get(services)
    if adapter is None:
        adapter = build_slack_adapter(services, handler=_PlaceholderConversation())
        _slack_adapters[services] = adapter
    return adapter


def _web_routers(services: Services) -> list[APIRouter]:
    """Routers the web part mounts: Slack's HTTP endpoints when Slack is configured for HTTP."""
    settings = services.settings
    routers: list[APIRouter] = []
    if settings.slack_enabled and settings.slack_signing_secret is not None:
        routers.append(_slack_adapter(services).router())
    return routers
