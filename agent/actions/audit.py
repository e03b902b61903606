"""`audit`: who asked the bot to do what, when, approved by whom, with what outcome.

For workspace admins only; the front-end says who is one (Slack: workspace admins
and owners, from `users.info`; Discord: Manage Server; the local shell: its operator)
through `ChatContext.is_admin`. Always the asker's own workspace. The listing goes
to the admin privately: it names members and what they did.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from agent.actions.base import ActionError, NotAdmin, Outcome
from agent.context import ActionContext, AdminCheck
from storage import audit
from storage.audit import AuditEntry

NOT_ADMIN = "Only workspace admins can read the audit log."
MAX_ROWS = 50
# A chat mention (Slack `<@U123>` or `<@U123|name>`, Discord `<@123>` / `<@!123>`) or `@name`.
_MENTION = re.compile(r"^<@!?([A-Za-z0-9]+)(?:\|[^>]*)?>$")


def member_key(text: str) -> str:
    """The external id or display name a `user` filter names."""
    found = _MENTION.match(text)
    if found:
        return found.group(1)
    return text.removeprefix("@")


def _who(external_id: str | None, name: str | None) -> str:
    if external_id is None:
        return "(removed member)"
    return f"@{name}" if name else external_id


def render(entry: AuditEntry) -> str:
    when = entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    line = f"{when}  {_who(entry.actor_external_id, entry.actor_name)}  {entry.action}"
    if entry.target:
        line += f" {entry.target}"
    line += f": {entry.outcome}"
    if entry.requester_external_id is not None:
        asker = _who(entry.requester_external_id, entry.requester_name)
        line += f" (asked by {asker})"
    return line


async def entries(
    ctx: ActionContext,
    *,
    is_admin: AdminCheck | None,
    user: str | None = None,
    action: str | None = None,
    since: date | None = None,
    limit: int = MAX_ROWS,
) -> list[AuditEntry]:
    """The newest entries (at most `limit`) matching the filters, for an admin only."""
    if is_admin is None or not await is_admin():
        raise NotAdmin(NOT_ADMIN)
    pool = ctx.deps.pool
    workspace_id = ctx.identity.workspace_id
    member = None
    if user is not None:
        member = await audit.find_member(pool, workspace_id=workspace_id, who=member_key(user))
        if member is None:
            raise ActionError(f"No member {user} has used the bot in this workspace.")
    return await audit.query(
        pool,
        workspace_id=workspace_id,
        chat_user_id=member,
        action=action,
        since=datetime.combine(since, time(), UTC) if since is not None else None,
        limit=limit,
    )


async def show(
    ctx: ActionContext,
    *,
    is_admin: AdminCheck | None,
    user: str | None = None,
    action: str | None = None,
    since: date | None = None,
) -> Outcome:
    """The `audit` command: the listing, sent privately."""
    rows = await entries(
        ctx, is_admin=is_admin, user=user, action=action, since=since, limit=MAX_ROWS + 1
    )
    if not rows:
        return Outcome("No audit entries match.")
    lines = [render(r) for r in rows[:MAX_ROWS]]
    more = f"\n(showing the newest {MAX_ROWS}; narrow it with user, action or since)"
    listing = "Audit log, newest first:\n" + "\n".join(lines)
    listing += more if len(rows) > MAX_ROWS else ""
    return Outcome(f"I sent you the audit log privately ({len(lines)} entries).", private=listing)
