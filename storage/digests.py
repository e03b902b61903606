"""Digest subscriptions (which channel, what local time) and their daily runs.

A run is unique per (subscription, local date). The job that delivers it marks it
'posting' before the post goes out, so a digest is posted at most once per day
even if a worker dies; the job engine, not this table, decides who runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from storage.types import Executor

_COLUMNS = "id, workspace_id, channel_id, local_time, time_zone, enabled, created_by"


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    workspace_id: int
    channel_id: str
    local_time: time
    time_zone: str
    enabled: bool
    created_by: int | None


def _sub(row: object) -> Subscription:
    r = row  # asyncpg.Record
    return Subscription(
        id=r["id"],  # type: ignore[index]
        workspace_id=r["workspace_id"],  # type: ignore[index]
        channel_id=r["channel_id"],  # type: ignore[index]
        local_time=r["local_time"],  # type: ignore[index]
        time_zone=r["time_zone"],  # type: ignore[index]
        enabled=r["enabled"],  # type: ignore[index]
        created_by=r["created_by"],  # type: ignore[index]
    )


async def upsert(
    db: Executor,
    *,
    workspace_id: int,
    channel_id: str,
    local_time: time,
    time_zone: str,
    created_by: int | None,
) -> Subscription:
    """Turn a channel's digest on (or change its time), one row per channel.

    Its creator's accounts are in it from the start (one statement: both or neither).
    """
    row = await db.fetchrow(
        f"""
        WITH sub AS (
            INSERT INTO digest_subscriptions
                (workspace_id, channel_id, local_time, time_zone, created_by)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (workspace_id, channel_id) DO UPDATE
               SET local_time = EXCLUDED.local_time, time_zone = EXCLUDED.time_zone,
                   enabled = true, updated_at = now()
            RETURNING {_COLUMNS}
        ), member AS (
            INSERT INTO digest_members (subscription_id, chat_user_id)
            SELECT id, created_by FROM sub WHERE created_by IS NOT NULL
            ON CONFLICT DO NOTHING
        )
        SELECT * FROM sub
        """,
        workspace_id,
        channel_id,
        local_time,
        time_zone,
        created_by,
    )
    return _sub(row)


async def disable(db: Executor, *, workspace_id: int, channel_id: str) -> bool:
    result: str = await db.execute(
        """
        UPDATE digest_subscriptions SET enabled = false, updated_at = now()
         WHERE workspace_id = $1 AND channel_id = $2 AND enabled
        """,
        workspace_id,
        channel_id,
    )
    return result.endswith(" 1")


async def list_for_workspace(db: Executor, *, workspace_id: int) -> list[Subscription]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM digest_subscriptions WHERE workspace_id = $1 AND enabled"
        " ORDER BY channel_id",
        workspace_id,
    )
    return [_sub(r) for r in rows]


async def list_enabled(db: Executor) -> list[Subscription]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM digest_subscriptions WHERE enabled ORDER BY id")
    return [_sub(r) for r in rows]


async def get_subscription(db: Executor, subscription_id: int) -> Subscription | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM digest_subscriptions WHERE id = $1", subscription_id
    )
    return _sub(row) if row else None


async def add_runs(db: Executor, runs: list[tuple[int, date]]) -> set[tuple[int, date]]:
    """Record that these (subscription, local date) runs are due, in one statement; the
    pairs that were not recorded yet (a run is recorded once, however many sweeps)."""
    if not runs:
        return set()
    rows = await db.fetch(
        """
        INSERT INTO digest_runs (subscription_id, local_date)
        SELECT * FROM unnest($1::bigint[], $2::date[])
        ON CONFLICT (subscription_id, local_date) DO NOTHING
        RETURNING subscription_id, local_date
        """,
        [sub for sub, _ in runs],
        [day for _, day in runs],
    )
    return {(r["subscription_id"], r["local_date"]) for r in rows}


async def begin_posting(db: Executor, *, subscription_id: int, local_date: date) -> int | None:
    """Take the run for posting (queued, or failed before anything was posted); its id.

    None when it is already posting, or posted: a run whose post may have gone out
    is never posted again, so a digest is posted at most once per local day.
    """
    run_id: int | None = await db.fetchval(
        """
        UPDATE digest_runs SET status = 'posting', attempts = attempts + 1, error = NULL
         WHERE subscription_id = $1 AND local_date = $2 AND status IN ('queued', 'failed')
        RETURNING id
        """,
        subscription_id,
        local_date,
    )
    return run_id


async def finish_run(
    db: Executor,
    *,
    run_id: int,
    message_ref: str | None,
    error: str | None = None,
    posted_at: datetime | None = None,
) -> bool:
    """Mark a posting run posted, or failed (nothing was posted: a retry may post it)."""
    result: str = await db.execute(
        """
        UPDATE digest_runs
           SET status = CASE WHEN $2::text IS NULL THEN 'posted' ELSE 'failed' END,
               posted_at = CASE WHEN $2::text IS NULL THEN coalesce($4, now()) END,
               message_ref = $3, error = $2
         WHERE id = $1 AND status = 'posting'
        """,
        run_id,
        error,
        message_ref,
        posted_at,
    )
    return result.endswith(" 1")


@dataclass(frozen=True, slots=True)
class Workspace:
    id: int
    frontend: str
    external_id: str
    name: str | None


@dataclass(frozen=True, slots=True)
class Member:
    chat_user_id: int
    external_id: str


async def get_workspace(db: Executor, workspace_id: int) -> Workspace | None:
    row = await db.fetchrow(
        "SELECT id, frontend, external_id, name FROM workspaces WHERE id = $1", workspace_id
    )
    return Workspace(row["id"], row["frontend"], row["external_id"], row["name"]) if row else None


async def account_owners(db: Executor, *, subscription_id: int) -> list[Member]:
    """Members who opted in to this digest and have at least one linked account."""
    rows = await db.fetch(
        """
        SELECT DISTINCT u.id, u.external_id FROM digest_members m
          JOIN digest_subscriptions s ON s.id = m.subscription_id
          JOIN chat_users u ON u.id = m.chat_user_id AND u.workspace_id = s.workspace_id
          JOIN linked_accounts a ON a.owner_id = u.id AND a.workspace_id = u.workspace_id
         WHERE m.subscription_id = $1 ORDER BY u.id
        """,
        subscription_id,
    )
    return [Member(r["id"], r["external_id"]) for r in rows]


async def get(db: Executor, *, workspace_id: int, channel_id: str) -> Subscription | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM digest_subscriptions WHERE workspace_id = $1 AND channel_id = $2",
        workspace_id,
        channel_id,
    )
    return _sub(row) if row else None


async def set_member(
    db: Executor, *, subscription_id: int, chat_user_id: int, member: bool
) -> bool:
    """Opt a member's accounts in to (or out of) a digest; True if anything changed."""
    if member:
        sql = """INSERT INTO digest_members (subscription_id, chat_user_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING"""
    else:
        sql = "DELETE FROM digest_members WHERE subscription_id = $1 AND chat_user_id = $2"
    result: str = await db.execute(sql, subscription_id, chat_user_id)
    return result.endswith(" 1")


async def members(db: Executor, *, subscription_id: int) -> list[int]:
    rows = await db.fetch(
        "SELECT chat_user_id FROM digest_members WHERE subscription_id = $1 ORDER BY joined_at",
        subscription_id,
    )
    return [r["chat_user_id"] for r in rows]
