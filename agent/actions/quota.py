"""What the requester has left today: messages, model tokens, platform quotas."""

from __future__ import annotations

from datetime import UTC

from agent.actions.base import Outcome, budgets
from agent.context import ActionContext
from storage.ratelimit import LimiterUnavailable


async def show_quota(ctx: ActionContext) -> Outcome:
    try:
        statuses = await budgets(ctx).report(
            workspace_id=ctx.identity.workspace_id, chat_user_id=ctx.identity.chat_user_id
        )
    except LimiterUnavailable:
        return Outcome(
            "I can't read the budgets right now (the limiter is unreachable); try again shortly."
        )
    if not statuses:
        return Outcome("No limits are configured: nothing is being counted.")
    lines = ["Your budgets:"]
    for s in statuses:
        reset = f", resets {s.reset_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if s.reset_at else ""
        lines.append(f"- {s.name}: {s.used:,} of {s.limit:,} used, {s.remaining:,} left{reset}")
    return Outcome("\n".join(lines))
