"""Discord front-end: gateway messages, `/social` and approval buttons -> the conversation core.

An adapter only: `convert` turns discord.py objects into `IncomingMessage`,
`sink` implements `ReplySink`, `client` routes events, `part` runs it.
"""

from bot.core.messages import ConversationHandler
from bot.discord.part import DiscordPart, DiscordUnavailable

__all__ = ["ConversationHandler", "DiscordPart", "DiscordUnavailable"]
