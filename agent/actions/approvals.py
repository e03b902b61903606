"""No side effect without a person: propose an action, then run it on an approval.

`propose` stores the exact arguments (hashed) as a pending action bound to the
requester. `resolve` claims it atomically and runs the action's executor
(`Deps.executors`, built from `agent.actions.EXECUTORS`) in code; the model is never involved after proposing. Refusals (another user, a
second or late click, arguments changed since) execute nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.actions.base import USER_ERRORS, ApprovalTicket, Outcome, user_message
from agent.context import ActionContext, Progress
from storage import approvals as store
from storage import audit
from storage.approvals import PendingAction

log = logging.getLogger(__name__)

REFUSALS = {
    "not_found": "That request was not found.",
    "wrong_user": "Only the person who asked can approve or reject this request.",
    "already_decided": "That request was already answered; nothing more was done.",
    "expired": "That request has expired; nothing was done. Ask again if you still want it.",
}

__all__ = ["REFUSALS", "PendingAction", "Progress", "propose", "resolve"]


def shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters, for prompts that quote someone's text."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def attributed(ctx: ActionContext, summary: str) -> str:
    """The summary with who proposed it: a typed command, or the assistant after a message.

    A proposal the model was steered into (say, by text in a video title or a quoted
    message) then reads as the assistant's suggestion, quoting what the person said.
    """
    if ctx.origin == "assistant":
        said = shorten(ctx.request_text, 120) or "(no text)"
        return f"The assistant suggested this after your message “{said}”: {summary}"
    return f"You asked: {summary}"


async def propose(ctx: ActionContext, action: str, args: dict[str, Any], summary: str) -> Outcome:
    """Store a pending action for the requester and say what approval is needed."""
    if action not in ctx.deps.executors:
        raise RuntimeError(f"no executor registered for {action!r}")
    args, summary = _without_nul(args), _without_nul(summary)
    ttl = ctx.deps.config.approval_ttl_seconds
    pending = await store.create(
        ctx.deps.pool,
        workspace_id=ctx.identity.workspace_id,
        chat_user_id=ctx.identity.chat_user_id,
        action=action,
        args=args,
        summary=summary,
        ttl_seconds=ttl,
    )
    await audit.record(
        ctx.deps.pool,
        action=f"request:{action}",
        outcome="pending",
        workspace_id=ctx.identity.workspace_id,
        chat_user_id=ctx.identity.chat_user_id,
        target=pending.id,
        detail={"origin": ctx.origin},
    )
    minutes = max(ttl // 60, 1)
    return Outcome(
        text=f"{summary}: waiting for your approval (expires in {minutes} minutes).",
        approval=ApprovalTicket(
            action_id=pending.id, summary=attributed(ctx, summary), expires_in_seconds=ttl
        ),
    )


def _without_nul(value: Any) -> Any:
    """Drop U+0000 from every string (jsonb and text cannot store it; the model may write it)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


async def resolve(
    ctx: ActionContext, action_id: str, *, approved: bool, progress: Progress | None = None
) -> str:
    """Approve (and run) or reject a pending action; returns what to tell the requester."""
    ident = ctx.identity
    decided = await store.decide(
        ctx.deps.pool,
        action_id=action_id,
        workspace_id=ident.workspace_id,
        chat_user_id=ident.chat_user_id,
        approved=approved,
    )
    if isinstance(decided, str):
        await audit.record(
            ctx.deps.pool,
            action="approval",
            outcome=f"refused:{decided}",
            workspace_id=ident.workspace_id,
            chat_user_id=ident.chat_user_id,
            target=action_id[:64],
        )
        return REFUSALS[decided]
    pending = decided
    # Who asked, for the audit: the person deciding may be someone else (an owner).
    asked = {"requested_by": pending.chat_user_id}

    async def record(outcome: str) -> None:
        await audit.record(
            ctx.deps.pool,
            action=f"approval:{pending.action}",
            outcome=outcome,
            workspace_id=ident.workspace_id,
            chat_user_id=ident.chat_user_id,
            target=pending.id,
            detail=asked,
        )

    if not approved:
        await record("rejected")
        return f"Cancelled: {pending.summary}."
    if not pending.hash_matches or pending.action not in ctx.deps.executors:
        await store.finish(
            ctx.deps.pool, action_id=pending.id, status="failed", result="arguments changed"
        )
        await record("refused:args_changed")
        return "That request's details changed after it was made; nothing was done. Ask again."
    try:
        result = await ctx.deps.executors[pending.action](ctx, pending, progress)
    except USER_ERRORS as exc:
        message = user_message(exc)
        await store.finish(ctx.deps.pool, action_id=pending.id, status="failed", result=message)
        return f"Could not {pending.summary[0].lower()}{pending.summary[1:]}: {message}"
    except Exception:
        log.exception("approved action failed", extra={"action": pending.action})
        await store.finish(ctx.deps.pool, action_id=pending.id, status="failed", result="error")
        raise
    await store.finish(ctx.deps.pool, action_id=pending.id, status="done", result=result)
    await record("done")
    return result
