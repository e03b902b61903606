"""The port the Discord adapter drives: whatever answers conversations.

Defined here (not imported from the core) so the adapter depends on a shape,
not on an implementation; `bot.core.service.ChatOpsService` satisfies it.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.messages import IncomingMessage, ReplySink


class ConversationHandler(Protocol):
    """Handles one incoming message, and one approve/reject click."""

    async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
        """Answer `message` through `sink`; never raises."""

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
        """A person clicked approve or reject on a pending action; the core decides if they may."""
