"""What the requester has left today: messages, model tokens, platform quotas."""

from __future__ import annotations

from datetime import UTC

from agent.actions.base import Outcome, budgets
from agent.context import ActionContext
from storage.ratelimit import BudgetStatus, LimiterUnavailable

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


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
        lines.append(f"- {_name(s)}: {s.used:,} of {s.limit:,} used, {s.remaining:,} left{reset}")
    return Outcome("\n".join(lines))


def _name(s: BudgetStatus) -> str:
    """ "your messages (per minute)", "workspace LLM tokens today (UTC)", "<platform> ...".

    Platforms appear by their registry name until they carry a display name here.
    """
    whose = {"user": "your", "workspace": "workspace"}.get(s.scope, s.platform or "")
    account = f", account {s.account_id}" if s.account_id is not None else ""
    if s.rolling_seconds is None:
        return f"{whose} {s.label}{account} today ({s.reset_zone})"
    size, unit = next((size, unit) for size, unit in _UNITS if s.rolling_seconds % size == 0)
    count = s.rolling_seconds // size
    return f"{whose} {s.label}{account} (per {unit if count == 1 else f'{count} {unit}s'})"
