"""Front-end-neutral conversation core."""

from bot.core.messages import (
    ApprovalRequest,
    Attachment,
    Frontend,
    IncomingMessage,
    Reply,
    ReplySink,
)

__all__ = ["ApprovalRequest", "Attachment", "Frontend", "IncomingMessage", "Reply", "ReplySink"]
