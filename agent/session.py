"""One request's context: who asks, where, with which attachments.

Tools get it through LangChain's runtime context and the grammar gets it as an
argument, so identity never comes from anything the model writes. Effects that
must reach the person (private links, approval prompts) are collected in
`outbox` and delivered by the conversation core after the reply.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.actions.base import ActionError, Outcome
from agent.context import ActionContext, AdminCheck


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """What the conversation knows of an attachment; `locator` re-opens it later."""

    name: str
    size: int | None
    mime_type: str | None
    locator: dict[str, Any]


@dataclass(slots=True)
class ChatContext:
    """The runtime context of one request (LangChain `context_schema`)."""

    action: ActionContext
    channel_id: str
    reply_to: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[AttachmentInfo, ...] = ()
    # Only the local shell may name files on this machine.
    allow_local_files: bool = False
    outbox: list[Outcome] = field(default_factory=list)
    # Per-run tool-call budget, counted by the tools (set by the runner).
    max_tool_calls: int = 8
    tool_calls: int = 0
    # Whether the person is a workspace admin, asked of their front-end when it matters.
    is_admin: AdminCheck | None = None

    def find_attachment(self, name: str | None) -> AttachmentInfo | None:
        """The named attachment, or the only video one when no name is given."""
        if name:
            for att in self.attachments:
                if att.name == name:
                    return att
            return None
        videos = [a for a in self.attachments if (a.mime_type or "").startswith("video/")]
        pool = videos or list(self.attachments)
        return pool[0] if len(pool) == 1 else None

    def local_file(self, path: str) -> AttachmentInfo:
        """A file on this machine as an upload source (shell only)."""
        if not self.allow_local_files:
            raise ActionError("File paths work only in the local shell; attach the video instead.")
        resolved = Path(path).expanduser().resolve()
        if not resolved.is_file():
            raise ActionError(f"No such file: {path}")
        mime = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
        size = resolved.stat().st_size
        return AttachmentInfo(
            name=resolved.name,
            size=size,
            mime_type=mime,
            locator={"kind": "file", "path": str(resolved), "size": size, "mime_type": mime},
        )
