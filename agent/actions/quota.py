"""What the requester has left: messages, model tokens, and every configured platform's quota."""

from __future__ import annotations

from datetime import UTC

from agent.actions.base import Outcome
from agent.context import ActionContext
from agent.layout import Field, Layout, Section
from agent.limits import BudgetStatus
from integrations.errors import format_wait
from storage import accounts as account_store
from storage.ratelimit import LimiterUnavailable

_OWN = {"user": "your", "workspace": "workspace"}


_PER = {1: "second", 60: "minute", 3600: "hour"}


def _window(s: BudgetStatus) -> str:
    """'(per minute)', '(per 24 h)' for moving windows; 'today (Europe/Paris)' for days."""
    if s.rolling_seconds is not None:
        return f"(per {_PER.get(s.rolling_seconds) or format_wait(s.rolling_seconds)})"
    return f"today ({s.reset_zone or 'UTC'})"


def _label(ctx: ActionContext, s: BudgetStatus, refs: dict[int, str]) -> str:
    """'YouTube quota units today (America/Los_Angeles)', 'your messages (per minute)'..."""
    if s.platform is None:
        return f"{_OWN.get(s.scope, s.scope)} {s.label} {_window(s)}"
    name = ctx.deps.platforms.display(s.platform)
    if s.account_id is not None:
        return f"{name} {s.label}, account {refs.get(s.account_id, '?')} {_window(s)}"
    return f"{name} {s.label} {_window(s)}"


async def budgets(ctx: ActionContext) -> list[tuple[str, BudgetStatus]]:
    """Every budget that applies to the requester, each with how chat names it.

    Raises LimiterUnavailable when the limiter cannot be asked.
    """
    ident = ctx.identity
    own = await account_store.list_for_owner(
        ctx.deps.pool, workspace_id=ident.workspace_id, owner_id=ident.chat_user_id
    )
    configured = set(ctx.deps.platforms.configured())
    mine = [(a.platform, a.id) for a in own if a.platform in configured]
    statuses = await ctx.deps.budgets.report(
        workspace_id=ident.workspace_id, chat_user_id=ident.chat_user_id, accounts=mine
    )
    refs = {a.id: a.ref for a in own}
    return [
        (_label(ctx, s, refs), s)
        for s in statuses
        if s.platform is None or s.platform in configured
    ]


async def show_quota(ctx: ActionContext) -> Outcome:
    try:
        statuses = await budgets(ctx)
    except LimiterUnavailable:
        return Outcome(
            "I can't read the budgets right now (the limiter is unreachable); try again shortly."
        )
    if not statuses:
        return Outcome("No limits are configured: nothing is being counted.")
    fields = []
    for label, s in statuses:
        reset = f", resets {s.reset_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if s.reset_at else ""
        shown = label[:1].upper() + label[1:]  # "Your messages (per minute)"
        fields.append(Field(shown, f"{s.used:,} of {s.limit:,} used, {s.remaining:,} left{reset}"))
    return Outcome.laid_out(Layout("Your budgets", (Section("", tuple(fields), inline=False),)))
