"""What the Slack adapter needs from the conversation core (and nothing more).

`bot.core.service.ChatOpsService` satisfies this structurally; tests pass a
recording fake. Keeping the port here lets the adapter be built and tested
without the core.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.messages import IncomingMessage, ReplySink


class ConversationHandler(Protocol):
    """The conversation core, as seen by a front-end adapter."""

    async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
        """Answer one message through `sink`; never raises."""

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
        """Apply a click on an approval button; the core checks that `user_id` may decide."""
