"""Link, confirm, list, hand over and unlink the requester's own social accounts."""

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
from agent.context import ActionContext, Progress
from agent.layout import Field, Layout, Section
from agent.ports import TRANSFER_ACTION, AwaitingOwner, Linked, LinkRefused
from integrations.registry import Platforms
from storage import accounts as account_store
from storage import approvals as approval_store
from storage import pending_links
from storage.accounts import LinkedAccount


def shown(ctx: ActionContext, account: LinkedAccount) -> str:
    """'YouTube @handle': how an account is named to people."""
    caps = ctx.deps.platforms.capabilities(account.platform)
    return f"{caps.display_name} {caps.handle(account.handle)}"


def link_hint(platforms: Platforms) -> str:
    """'Try `link <name>` or ...' for the configured platforms."""
    names = platforms.configured()
    if not names:
        return "No platform is configured on this bot yet."
    return "Try " + " or ".join(f"`link {n}`" for n in names) + "."


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
        plat = ctx.deps.platforms.resolve(wanted)
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
        what = f"'{spec[:60]}'" if spec else (platform_title(ctx, platform) if platform else "any")
        raise ActionError(f"Account {what} not found among your linked accounts. Try `accounts`.")
    if len(matches) > 1:
        options = ", ".join(f"{a.ref} ({shown(ctx, a)})" for a in matches)
        raise ActionError(f"Which account? You have several: {options}.")
    return matches[0]


async def link(ctx: ActionContext, platform: str, *, reply_to: dict[str, Any]) -> Outcome:
    """A one-time OAuth link, sent to the requester only."""
    name = normalize_platform(ctx, platform)
    assert name is not None
    require_configured(ctx, name)
    assert ctx.deps.ops is not None
    url = await ctx.deps.ops.start_link(ctx.identity, name, reply_to=reply_to)
    minutes = max(ctx.deps.config.oauth_state_ttl_seconds // 60, 1)
    title = platform_title(ctx, name)
    return Outcome(
        text=f"I sent you a private link to connect {title}.",
        private=f"Connect your {title} account: {url}\n"
        f"(single use, valid {minutes} minutes, and it works only for you: don't forward it.)",
    )


def linked_text(platforms: Platforms, outcome: Linked | AwaitingOwner) -> str:
    """What the requester is told once a link is through, or waits for the account's owner."""
    caps = platforms.capabilities(outcome.account.platform)
    name = f"{caps.display_name} {outcome.title} ({caps.handle(outcome.account.handle)})"
    if isinstance(outcome, Linked):
        return f"Linked {name} as {outcome.account.ref}."
    return (
        f"{name} is already linked to another member of this workspace; I asked them to "
        "approve handing it to you. Nothing changes until they do."
    )


async def confirm_link(ctx: ActionContext, code: str) -> Outcome:
    """`link confirm <code>`: activate a link made where no chat sign-in could vouch for it."""
    if ctx.deps.ops is None:
        raise ActionError("Platform work is not available in this process.")
    try:
        outcome = await ctx.deps.ops.confirm_link(ctx.identity, code)
    except LinkRefused as exc:
        raise ActionError(str(exc)) from None
    return Outcome(linked_text(ctx.deps.platforms, outcome))


async def own_accounts(ctx: ActionContext) -> list[LinkedAccount]:
    """The requester's usable accounts in their workspace."""
    ident = ctx.identity
    return await account_store.list_for_owner(
        ctx.deps.pool, workspace_id=ident.workspace_id, owner_id=ident.chat_user_id
    )


async def list_accounts(ctx: ActionContext) -> Outcome:
    """The requester's accounts, their links still waiting, and requests waiting for them."""
    pool, workspace, person = ctx.deps.pool, ctx.identity.workspace_id, ctx.identity.chat_user_id
    # One query when nothing waits (the usual answer); the waiting lists only when some do.
    found = await account_store.overview(
        pool, workspace_id=workspace, chat_user_id=person, approval_action=TRANSFER_ACTION
    )
    own = found.accounts
    waiting = (
        await pending_links.list_for_requester(pool, workspace_id=workspace, requester_id=person)
        if found.links_waiting
        else []
    )
    asked = (
        await approval_store.list_waiting(
            pool, workspace_id=workspace, chat_user_id=person, action=TRANSFER_ACTION
        )
        if found.approvals_waiting
        else []
    )
    if not (own or waiting or asked):
        return Outcome(f"You have no linked accounts yet. {link_hint(ctx.deps.platforms)}")
    sections: list[Section] = []
    if own:
        rows = tuple(
            Field(
                a.ref, shown(ctx, a) + ("" if a.status == "ok" else " (needs to be linked again)")
            )
            for a in own
        )
        sections.append(Section("", rows, inline=False))
    if waiting:
        fields: list[Field] = []
        for p in waiting:
            caps = ctx.deps.platforms.capabilities(p.platform)
            why = (
                "for its current owner's approval"
                if p.approval_id
                else "for you to type `link confirm <code>` with the code shown in your browser"
            )
            fields.append(
                Field(f"{caps.display_name} {p.display_name} ({caps.handle(p.handle)})", why)
            )
        sections.append(Section("Waiting (not usable yet)", tuple(fields), inline=False))
    if asked:
        sections.append(
            Section(
                "Requests waiting for your approval (I ask you about each one in chat)",
                body="\n".join(f"- {a.summary}" for a in asked),
            )
        )
    title = "Your linked accounts" if own else "Your accounts (none linked yet)"
    return Outcome.laid_out(Layout(title, tuple(sections)))


async def request_unlink(
    ctx: ActionContext, *, platform: str | None, account: str | None
) -> Outcome:
    """Ask the requester to confirm unlinking one of their accounts."""
    plat = normalize_platform(ctx, platform)
    target = await resolve_account(ctx, account, platform=plat)
    return await approvals.propose(
        ctx, "unlink", {"account": target.ref}, f"Unlink {shown(ctx, target)} ({target.ref})"
    )


async def execute_unlink(
    ctx: ActionContext, pending: approvals.PendingAction, progress: Progress | None
) -> str:
    target = await resolve_account(ctx, pending.args["account"])
    if ctx.deps.ops is None:
        raise ActionError("Platform work is not available in this process.")
    await ctx.deps.ops.unlink(ctx.identity, target.ref)
    return f"Unlinked {shown(ctx, target)}."


async def execute_transfer(
    ctx: ActionContext, pending: approvals.PendingAction, progress: Progress | None
) -> str:
    """The current owner approved another member's request: the account moves to them.

    Runs for the owner (the approval is bound to them); the requester is told
    through the notifier, if their front-end is reachable from this process.
    """
    if ctx.deps.ops is None:
        raise ActionError("Platform work is not available in this process.")
    try:
        done = await ctx.deps.ops.approve_transfer(
            ctx.identity,
            approval_id=pending.id,
            account_ref=str(pending.args["account"]),
            requester_id=int(pending.args["requester"]),
        )
    except LinkRefused as exc:
        raise ActionError(str(exc)) from None
    account = done.account
    await ctx.deps.notify(
        done.requester.identity.frontend,
        done.reply_to,
        f"Its owner approved: {shown(ctx, account)} is now linked to you as {account.ref}.",
    )
    return f"{shown(ctx, account)} now belongs to {done.requester.mention}; it is no longer yours."
