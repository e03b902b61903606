"""Link, list and unlink the requester's own social accounts."""

from __future__ import annotations

from typing import Any

from agent.actions import approvals
from agent.actions.base import (
    ActionError,
    Outcome,
    normalize_platform,
    platform_title,
    require_configured,
)
from agent.context import ActionContext
from storage import accounts as account_store
from storage.accounts import LinkedAccount


async def resolve_account(
    ctx: ActionContext, spec: str | None, *, platform: str | None = None
) -> LinkedAccount:
    """One of the requester's own accounts, by handle ref, @handle, or platform.

    Only accounts owned by this user in this workspace are ever candidates, so
    naming another tenant's account is indistinguishable from naming none.
    """
    ident = ctx.identity
    own = await account_store.list_for_owner(
        ctx.deps.pool, workspace_id=ident.workspace_id, owner_id=ident.chat_user_id
    )
    if platform is not None:
        own = [a for a in own if a.platform == platform]
    if spec:
        wanted = spec.strip()
        plat = None
        try:
            plat = normalize_platform(wanted)
        except ActionError:
            plat = None
        matches = [
            a
            for a in own
            if a.ref == wanted
            or a.handle.lower().lstrip("@") == wanted.lower().lstrip("@")
            or (plat is not None and a.platform == plat)
        ]
    else:
        matches = own
    if not matches:
        what = f"'{spec[:60]}'" if spec else (platform_title(platform) if platform else "any")
        raise ActionError(f"Account {what} not found among your linked accounts. Try `accounts`.")
    if len(matches) > 1:
        options = ", ".join(f"{a.ref} (@{a.handle})" for a in matches)
        raise ActionError(f"Which account? You have several: {options}.")
    return matches[0]


async def link(ctx: ActionContext, platform: str, *, reply_to: dict[str, Any]) -> Outcome:
    """A one-time OAuth link, sent to the requester only."""
    name = normalize_platform(platform)
    assert name is not None
    require_configured(ctx, name)
    url = await ctx.deps.ops.start_link(ctx.identity, name, reply_to=reply_to)
    minutes = max(ctx.deps.config.oauth_state_ttl_seconds // 60, 1)
    return Outcome(
        text=f"I sent you a private link to connect {platform_title(name)}.",
        private=f"Connect your {platform_title(name)} account: {url}\n"
        f"(single use, valid {minutes} minutes. Don't share it: whoever opens it links "
        "their account to you.)",
    )


async def list_accounts(ctx: ActionContext) -> Outcome:
    own = await account_store.list_for_owner(
        ctx.deps.pool, workspace_id=ctx.identity.workspace_id, owner_id=ctx.identity.chat_user_id
    )
    if not own:
        return Outcome("You have no linked accounts yet. Try `link youtube` or `link instagram`.")
    lines = ["Your linked accounts:"]
    for a in own:
        flag = "" if a.status == "ok" else " (needs to be linked again)"
        lines.append(f"- {a.ref}: {platform_title(a.platform)} @{a.handle}{flag}")
    return Outcome("\n".join(lines))


async def request_unlink(
    ctx: ActionContext, *, platform: str | None, account: str | None
) -> Outcome:
    """Ask the requester to confirm unlinking one of their accounts."""
    plat = normalize_platform(platform)
    target = await resolve_account(ctx, account, platform=plat)
    return await approvals.propose(
        ctx,
        "unlink",
        {"account": target.ref},
        f"Unlink {platform_title(target.platform)} account @{target.handle} ({target.ref})",
    )


async def execute_unlink(
    ctx: ActionContext, pending: approvals.PendingAction, progress: approvals.Progress | None
) -> str:
    target = await resolve_account(ctx, pending.args["account"])
    handle = await ctx.deps.ops.unlink(ctx.identity, target.ref)
    return f"Unlinked {platform_title(target.platform)} account @{handle}."


approvals.register("unlink", execute_unlink)
