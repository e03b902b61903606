"""Slack front-end: converts Slack events to `IncomingMessage` and implements `ReplySink`.

`build_slack_adapter(services, handler=...)` is the one entry point the
composition root uses; `SlackAdapter.router()` mounts the HTTP endpoints and
`SlackSocketPart` runs Socket Mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.messages import ConversationHandler
from bot.slack.adapter import SlackAdapter, SlackConfig
from bot.slack.convert import reply_to_for

if TYPE_CHECKING:
    from bot.services import Services

__all__ = [
    "ConversationHandler",
    "SlackAdapter",
    "SlackConfig",
    "build_slack_adapter",
    "reply_to_for",
]


def build_slack_adapter(services: Services, *, handler: ConversationHandler) -> SlackAdapter:
    """The adapter for this process's settings (single- or multi-workspace)."""
    from storage.slack_installations import SlackInstallations

    config = SlackConfig.from_settings(services.settings)
    installations = (
        SlackInstallations(
            database=services.db, cipher=services.cipher, client_id=config.client_id or ""
        )
        if config.multi_workspace
        else None
    )
    return SlackAdapter(
        config=config, handler=handler, redis=services.redis, installations=installations
    )
