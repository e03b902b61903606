"""Daily digests: what goes in one, and the sweeper that posts those that are due.

The sweeper runs on every worker replica. Each subscription is posted at most
once per local day: a run row per (subscription, local date) is claimed with a
lease (storage.digests.claim_run), and a run whose holder died is not retried.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.actions.accounts import link_hint
from agent.actions.metrics import render
from agent.context import Deps
from integrations.errors import IntegrationError
from storage import digests as store
from storage.digests import Subscription, Workspace
from storage.identity import Identity

log = logging.getLogger(__name__)

# (workspace, channel id, text) -> the posted message's reference.
Post = Callable[[Workspace, str, str], Awaitable[str]]
LEASE_SECONDS = 600.0


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def due_date(sub: Subscription, now: datetime) -> str | None:
    """The subscription's local date if its local time has passed today, else None."""
    try:
        local = now.astimezone(ZoneInfo(sub.time_zone))
    except ZoneInfoNotFoundError:
        log.warning("digest subscription has an unknown time zone", extra={"sub": sub.id})
        return None
    return local.date().isoformat() if local.time() >= sub.local_time else None


async def build_digest(
    deps: Deps, workspace: Workspace, sub: Subscription, *, now: datetime
) -> str:
    """Yesterday-and-today figures for the accounts of the members who opted in to this
    channel's digest (its creator, and whoever said `digest join` there)."""
    lines = [f"Daily digest, {now:%Y-%m-%d}"]
    members = await store.account_owners(deps.pool, subscription_id=sub.id)
    if not members:
        return (
            f"{lines[0]}: no linked accounts in this digest yet. Link one "
            f"({link_hint(deps.platforms)}), or say `digest join` here to add yours."
        )
    if deps.ops is None:
        return lines[0] + ": no platform is configured on this bot."
    for member in members:
        ident = Identity(
            workspace_id=workspace.id,
            chat_user_id=member.chat_user_id,
            frontend=workspace.frontend,
            workspace_external_id=workspace.external_id,
            user_external_id=member.external_id,
        )
        try:
            report = await deps.ops.metrics(ident, days=1)
        except IntegrationError as exc:
            lines.append(f"- unavailable: {exc.user_message}")
            continue
        lines.append(render(report, "today", deps.platforms))
    return "\n".join(lines)


async def run_due_digests(
    deps: Deps, post: Post, now: datetime, *, owner: str | None = None
) -> int:
    """Post every digest that is due and not yet posted today; returns how many were posted."""
    me = owner or owner_id()
    posted = 0
    for sub in await store.list_enabled(deps.pool):
        local_date = due_date(sub, now)
        if local_date is None:
            continue
        run_id = await store.claim_run(
            deps.pool,
            subscription_id=sub.id,
            local_date=datetime.fromisoformat(local_date).date(),
            owner=me,
            lease_seconds=LEASE_SECONDS,
        )
        if run_id is None:
            continue
        workspace = await store.get_workspace(deps.pool, sub.workspace_id)
        if workspace is None:
            continue
        try:
            text = await build_digest(deps, workspace, sub, now=now)
            ref = await post(workspace, sub.channel_id, text)
        except Exception as exc:  # nothing was posted: mark failed so a later sweep retries
            log.exception("digest failed", extra={"subscription": sub.id})
            await store.finish_run(
                deps.pool, run_id=run_id, owner=me, message_ref=None, error=type(exc).__name__
            )
            continue
        await store.finish_run(deps.pool, run_id=run_id, owner=me, message_ref=ref)
        posted += 1
    return posted
