"""Construct each runnable part from Services. The one place that knows every part."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.services import Part, Services

if TYPE_CHECKING:
    from bot.core.service import ChatOpsService


class PartUnavailable(Exception):
    """A part was asked for whose feature is not configured or not built."""


def build_chatops(services: Services) -> ChatOpsService:
    """The conversation core: actions' dependencies (built once the pool is open) and the agent."""
    from agent.context import AgentConfig, Deps
    from agent.limits import NoLimits
    from agent.runner import AgentRunner, RunnerConfig, build_model
    from bot.core.service import ChatOpsService

    settings = services.settings
    built: list[Deps] = []

    def deps() -> Deps:
        if not built:
            built.append(
                Deps(
                    pool=services.db.pool,
                    redis=services.redis,
                    cipher=services.cipher,
                    config=AgentConfig(
                        public_base_url=settings.public_base_url,
                        youtube_default_privacy=settings.youtube_default_privacy,
                    ),
                    budgets=getattr(services, "budgets", None) or NoLimits(),
                    ops=getattr(services, "ops", None),
                )
            )
        return built[0]

    runner = None
    if settings.llm_enabled:
        config = RunnerConfig(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            max_model_calls=settings.llm_max_model_calls,
            max_tool_calls=settings.llm_max_tool_calls,
            max_output_tokens=settings.llm_max_output_tokens,
            timeout_seconds=settings.llm_request_timeout_seconds,
        )
        runner = AgentRunner(model=build_model(config), config=config)
    return ChatOpsService(deps=deps, runner=runner, history_turns=settings.llm_history_turns)


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

        return ShellPart(build_chatops(services))
    raise PartUnavailable(f"the '{name}' part is not available in this build")
