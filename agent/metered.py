"""One model call outside an agent run, paid from the day's LLM token budgets.

A thread's rolling summary and a digest's commentary each make one such call. Its worst
case (the prompt's estimate and the longest answer allowed) is reserved from the
user's (if any) and the workspace's day first, without counting a message or taking
the user's run slot (so the user's next message is never told to wait for it), and
settled after to the tokens the model reported; a failed call is refunded, like a
failed run that reported nothing.

The model comes counted and spanned like the agent's: `bot.assembly` hands each caller
a model wrapped by `agent.observe.observed` under its purpose (summary, digest).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent.limits import Budgets
from agent.tokens import estimate_tokens

if TYPE_CHECKING:  # LangChain loads only in processes that run a model
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

# What each message adds to a prompt beyond its text (role, framing), in tokens.
_PER_MESSAGE = 8


async def metered_call(
    budgets: Budgets,
    *,
    workspace_id: int,
    chat_user_id: int | None,
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    max_output: int,
) -> str | None:
    """The model's answer to `messages` (at most `max_output` tokens), or None when the
    budget cannot cover the call's worst case (nothing is called then). Raises what the
    model call raises; a caller bounds it in time (cancelled, it is refunded)."""
    worst = max_output + sum(estimate_tokens(m.text) + _PER_MESSAGE for m in messages)
    reservation = await budgets.reserve_tokens(
        workspace_id=workspace_id, chat_user_id=chat_user_id, tokens=worst
    )
    if not reservation.allowed:
        return None
    used = 0
    try:
        answer = await model.ainvoke(list(messages), max_tokens=max_output)
        usage = answer.usage_metadata
        # A model that reports nothing is charged its worst case.
        used = int(usage["total_tokens"]) if usage else worst
        return answer.text
    finally:
        await budgets.settle_tokens(
            workspace_id=workspace_id,
            chat_user_id=chat_user_id,
            reservation=reservation,
            reserved=worst,
            used=used,
        )
