"""Daily digests: what goes in one, which are due, and the job that delivers one.

`enqueue_due_digests` (the engine's schedule, every minute, on one replica) records
each due run and queues its delivery job in one transaction, keyed by (subscription,
local date), so any number of sweeps queue each digest once. `deliver_digest` is the
job: it builds the digest, then marks the run 'posting' and posts, shielded from
cancellation, so a digest is posted at most once per local day.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from agent.actions.accounts import link_hint
from agent.context import Deps
from agent.digest_build import gather
from agent.digest_content import Digest
from agent.observe import counted_delivery
from storage import digests as store
from storage import queue
from storage.digests import Subscription, Workspace

log = logging.getLogger(__name__)

# (workspace, channel id, digest) -> the posted message's reference.
Post = Callable[[Workspace, str, Digest], Awaitable[str]]


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
) -> Digest:
    """The day's figures for the accounts of the members who opted in to this channel's
    digest (its creator, and whoever said `digest join` there), with their changes."""
    title = f"Daily digest, {now:%Y-%m-%d}"
    members = await store.account_owners(deps.pool, subscription_id=sub.id)
    if not members:
        return Digest(
            title,
            now,
            notice=(
                f"no linked accounts in this digest yet. Link one "
                f"({link_hint(deps.platforms)}), or say `digest join` here to add yours."
            ),
        )
    if deps.ops is None:
        return Digest(title, now, notice="no platform is configured on this bot.")
    return await gather(
        deps, deps.ops, workspace, members, title=title, now=now, zone=_zone(sub.time_zone)
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


async def enqueue_due_digests(deps: Deps, now: datetime) -> int:
    """Record each due, not yet recorded run and queue its delivery; returns how many.

    Jobs are queued round-robin across workspaces (the engine starts them in queue
    order), so one big workspace's digests never stand in front of everyone else's.
    """
    due = [
        (sub, date.fromisoformat(local_date))
        for sub in await store.list_enabled(deps.pool)
        if (local_date := due_date(sub, now)) is not None
    ]
    async with deps.pool.acquire() as conn, conn.transaction():
        new = await store.add_runs(conn, [(sub.id, day) for sub, day in due])
        by_workspace: dict[int, list[tuple[dict[str, object], str]]] = {}
        for sub, day in due:
            if (sub.id, day) in new:
                payload = {"sub": sub.id, "date": day.isoformat(), "workspace": sub.workspace_id}
                job = (payload, f"digest:{sub.id}:{day.isoformat()}")
                by_workspace.setdefault(sub.workspace_id, []).append(job)
        jobs = [
            job
            for turn in itertools.zip_longest(*by_workspace.values())
            for job in turn
            if job is not None
        ]
        return await queue.enqueue_many(conn, queue.DIGEST, jobs)


async def requeue_digest(pool: asyncpg.Pool, payload: dict[str, Any], *, delay: float) -> None:
    """Hand a delivery to a fresh job due in `delay` seconds (the calling job then ends).

    For a wait that is no failure (its workspace's delivery slots are all taken): the
    engine's retry would count it against the job's attempts. Its own dedupe key, as
    the calling job still holds the delivery's; a second copy could only find the run
    already posted (`begin_posting`), so a crash in between never posts twice.
    """
    key = f"digest:{payload['sub']}:{payload['date']}:{secrets.token_hex(4)}"
    async with pool.acquire() as conn:
        await queue.enqueue(
            conn, queue.DIGEST, payload, dedupe_key=key, delay=timedelta(seconds=delay)
        )


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
    deps: Deps, post: Post, sub: Subscription, workspace: Workspace, local_date: date, text: Digest
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
