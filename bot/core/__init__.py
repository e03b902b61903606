"""Front-end-neutral conversation core."""

from bot.core.messages import (
    ApprovalRequest,
    Attachment,
    ConversationHandler,
    Frontend,
    IncomingMessage,
    Reply,
    ReplySink,
)

__all__ = [
    "ApprovalRequest",
    "Attachment",
    "ConversationHandler",
    "Frontend",
    "IncomingMessage",
    "Reply",
    "ReplySink",
]
