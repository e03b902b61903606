"""Daily digests: what goes in one, which are due, and the job that delivers one.

`enqueue_due_digests` (the engine's schedule, every minute, on one replica) records
each due run and queues its delivery job in one transaction, keyed by (subscription,
local date), so any number of sweeps queue each digest once. `deliver_digest` is the
job: it builds the text, then marks the run 'posting' and posts, shielded from
cancellation, so a digest is posted at most once per local day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.actions.accounts import link_hint
from agent.actions.metrics import render
from agent.context import Deps
from agent.observe import counted_delivery
from integrations.errors import IntegrationError
from storage import digests as store
from storage import queue
from storage.digests import Subscription, Workspace
from storage.identity import Identity

log = logging.getLogger(__name__)

# (workspace, channel id, text) -> the posted message's reference.
Post = Callable[[Workspace, str, str], Awaitable[str]]


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


async def enqueue_due_digests(deps: Deps, now: datetime) -> int:
    """Record each due, not yet recorded run and queue its delivery; returns how many."""
    due = [
        (sub, local_date)
        for sub in await store.list_enabled(deps.pool)
        if (local_date := due_date(sub, now)) is not None
    ]
    queued = 0
    async with deps.pool.acquire() as conn, conn.transaction():
        jobs: list[tuple[dict[str, object], str]] = []
        for sub, local_date in due:
            day = date.fromisoformat(local_date)
            if await store.add_run(conn, subscription_id=sub.id, local_date=day):
                jobs.append(({"sub": sub.id, "date": local_date}, f"digest:{sub.id}:{local_date}"))
        queued = await queue.enqueue_many(conn, queue.DIGEST, jobs)
    return queued


@counted_delivery
async def deliver_digest(
    deps: Deps, post: Post, *, subscription_id: int, local_date: date, now: datetime
) -> bool:
    """Build and post one digest (the delivery job); False if it was not this job's to post.

    Building may fail or be interrupted freely: nothing is out yet, the run stays
    queued and the job is retried. The post and its record run shielded: a
    shutdown never cuts between a digest going out and the run saying so.
    """
    sub = await store.get_subscription(deps.pool, subscription_id)
    if sub is None or not sub.enabled:
        return False
    workspace = await store.get_workspace(deps.pool, sub.workspace_id)
    if workspace is None:
        return False
    text = await build_digest(deps, workspace, sub, now=now)
    return await asyncio.shield(_post_once(deps, post, sub, workspace, local_date, text))


async def _post_once(
    deps: Deps, post: Post, sub: Subscription, workspace: Workspace, local_date: date, text: str
) -> bool:
    run_id = await store.begin_posting(deps.pool, subscription_id=sub.id, local_date=local_date)
    if run_id is None:
        return False
    try:
        ref = await post(workspace, sub.channel_id, text)
    except Exception as exc:  # nothing was posted: the run is failed, a retry may post it
        log.warning(
            "digest not posted", extra={"subscription": sub.id, "error": type(exc).__name__}
        )
        await store.finish_run(deps.pool, run_id=run_id, message_ref=None, error=type(exc).__name__)
        raise
    await store.finish_run(deps.pool, run_id=run_id, message_ref=ref)
    return True
