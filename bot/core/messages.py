"""Front-end-neutral conversation types: what adapters produce and what they implement.

An adapter (Slack, Discord, shell) converts its platform's event into an
`IncomingMessage` and implements `ReplySink`; `ChatOpsService.handle` does the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agent.context import AdminCheck
from agent.digest_content import Digest
from agent.layout import Layout

Frontend = Literal["slack", "discord", "local"]


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file shared with a message. `open` streams its bytes; nothing is held whole."""

    name: str
    size: int | None
    mime_type: str | None
    open: Callable[[], AsyncIterator[bytes]]
    # Where the bytes come from, for durable jobs that re-open it later
    # (e.g. {"kind": "file", "path": ...} or {"kind": "slack", "url": ...}).
    locator: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message from a person, already converted from its platform's event."""

    frontend: Frontend
    workspace_id: str
    channel_id: str
    user_id: str
    text: str
    thread_id: str | None = None
    message_id: str | None = None
    workspace_name: str | None = None
    user_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
    is_dm: bool = False
    is_mention: bool = False
    is_command: bool = False  # a slash command: parsed by the grammar, never the model
    # Asks the front-end whether this person administers the workspace (the `audit`
    # command); None: nobody here is (front-ends with no notion of admins).
    admin_check: AdminCheck | None = None

    @property
    def thread_key(self) -> str:
        """Conversation history is kept per (channel, thread)."""
        return f"{self.channel_id}:{self.thread_id or self.message_id or 'main'}"


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot says: plain text always (complete), and optionally the same answer
    laid out for rich clients (`layout`: Block Kit, embeds) or raw Slack `blocks`.

    `share_id` marks a private answer its reader may post to the channel: the sink
    adds a "Share to channel" button that hands the id back (`ConversationHandler.share`).
    `shared_by` is the user id of whoever made a private answer public.
    `digest` is a digest to show as the real one looks (`digest preview`), `text` its
    plain version.
    """

    text: str
    blocks: list[dict[str, Any]] | None = None
    layout: Layout | None = None
    share_id: str | None = None
    # Posted to the channel at this person's request (`share`, or the button): say so.
    shared_by: str | None = None
    digest: Digest | None = None


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A pending action the requester must confirm (buttons in chat, y/n in the shell)."""

    action_id: str
    summary: str
    requester_user_id: str
    expires_in_seconds: int


class ReplySink(Protocol):
    """How the core answers; implemented by each front-end adapter."""

    async def send(self, reply: Reply) -> str:
        """Post a message (in the thread of the request); return its id for `update`."""

    async def update(self, message_ref: str, reply: Reply) -> None:
        """Replace a message already sent (progress, outcomes)."""

    async def send_private(self, reply: Reply) -> None:
        """Send to the requester only (OAuth links, errors about their accounts)."""

    async def ask_approval(self, request: ApprovalRequest) -> None:
        """Ask the requester to approve or reject a pending action."""


class ConversationHandler(Protocol):
    """The conversation core as every front-end adapter sees it.

    `bot.core.service.ChatOpsService` satisfies it; adapters depend on this shape
    only, so each can be built and tested with a recording fake.
    """

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
        """A person clicked approve or reject; the core checks that `user_id` may decide."""

    async def share(
        self, *, frontend: str, workspace_id: str, user_id: str, share_id: str, sink: ReplySink
    ) -> bool:
        """A person clicked "Share to channel" on their private answer: post it publicly.
        True once posted (the adapter then removes the private copy)."""
