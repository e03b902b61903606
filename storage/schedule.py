"""Scheduled posts: the queue people see, and moving or missing a post's time.

A scheduled post is a post row with `publish_at` and its upload job (job_runs). The
job's number is how people name the post (`cancel 12`, `reschedule 12 in 2h`).
Tenancy is in every query: a requester sees their own, an admin their workspace's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.types import Executor

# A deferred post whose time came while no worker ran: kept, and its requester asked.
MISSED = "missed"
SCHEDULED = "scheduled"


@dataclass(frozen=True, slots=True)
class ScheduledPost:
    """One row of the queue."""

    run_id: int
    post_id: int
    publish_at: datetime
    platform: str
    account_ref: str
    handle: str
    title: str | None
    phase: str | None
    state: str
    chat_user_id: int | None
    # Uploaded already, waiting on the platform's own schedule (native scheduling).
    uploaded: bool
    # Its job failed (within the last week): `reschedule` tries it again.
    failed: bool = False
    error: str | None = None

    @property
    def status(self) -> str:
        """failed, missed, uploaded (the platform publishes it) or scheduled."""
        if self.failed:
            return "failed"
        if self.phase == MISSED:
            return MISSED
        return "uploaded" if self.uploaded else SCHEDULED


_SELECT = """
    SELECT r.id AS run_id, p.id AS post_id, p.publish_at, p.platform, a.ref, a.handle, p.title,
           r.phase, r.state, r.chat_user_id, p.status IN ('processing', 'published') AS uploaded,
           r.state = 'failed' AS failed, coalesce(p.error, r.outcome) AS error
      FROM job_runs r
      JOIN posts p ON p.id = r.post_id
      JOIN linked_accounts a ON a.id = p.account_id
     WHERE p.publish_at IS NOT NULL AND r.workspace_id = $1
       AND (r.state IN ('queued', 'running') OR (r.state = 'done' AND p.publish_at > now())
            OR (r.state = 'failed' AND p.publish_at > now() - interval '7 days'))
"""


def _row(r: Any) -> ScheduledPost:
    return ScheduledPost(
        run_id=r["run_id"],
        post_id=r["post_id"],
        publish_at=r["publish_at"],
        platform=r["platform"],
        account_ref=r["ref"],
        handle=r["handle"],
        title=r["title"],
        phase=r["phase"],
        state=r["state"],
        chat_user_id=r["chat_user_id"],
        uploaded=r["uploaded"],
        failed=r["failed"],
        error=r["error"],
    )


async def list_scheduled(
    db: Executor, *, workspace_id: int, chat_user_id: int | None, limit: int = 50
) -> list[ScheduledPost]:
    """Upcoming (and missed) scheduled posts, soonest first: one requester's, or (None)
    the whole workspace's."""
    rows = await db.fetch(
        _SELECT + " AND ($2::bigint IS NULL OR r.chat_user_id = $2) ORDER BY p.publish_at LIMIT $3",
        workspace_id,
        chat_user_id,
        limit,
    )
    return [_row(r) for r in rows]


async def due_between(
    db: Executor,
    *,
    workspace_id: int,
    start: datetime,
    end: datetime,
    account_ids: Sequence[int] | None = None,
) -> list[ScheduledPost]:
    """The workspace's scheduled posts due in [start, end), of these accounts if given."""
    rows = await db.fetch(
        _SELECT + " AND p.publish_at >= $2 AND p.publish_at < $3"
        " AND ($4::bigint[] IS NULL OR a.id = ANY($4::bigint[])) ORDER BY p.publish_at",
        workspace_id,
        start,
        end,
        None if account_ids is None else list(account_ids),
    )
    return [_row(r) for r in rows]


async def get(db: Executor, *, workspace_id: int, run_id: int) -> ScheduledPost | None:
    row = await db.fetchrow(_SELECT + " AND r.id = $2", workspace_id, run_id)
    return _row(row) if row else None


async def move(db: Executor, *, run_id: int, post_id: int, publish_at: datetime) -> bool:
    """Give a not-yet-started deferred post a new time; False if its job already started
    (or ended). The job row is locked first, so a worker starting it waits or wins."""
    locked = await db.fetchval(
        "SELECT 1 FROM job_runs WHERE id = $1 AND state = 'queued' FOR UPDATE", run_id
    )
    if locked is None:
        return False
    await db.execute(
        "UPDATE posts SET publish_at = $2, updated_at = now() WHERE id = $1", post_id, publish_at
    )
    await db.execute(
        "UPDATE job_runs SET phase = $2, updated_at = now() WHERE id = $1", run_id, SCHEDULED
    )
    return True


async def revive(db: Executor, *, run_id: int, post_id: int, publish_at: datetime) -> bool:
    """A failed scheduled post tried again at `publish_at`: its job row back to queued (its
    old outcome dropped), the post back to pending. False if the job had not failed."""
    result: str = await db.execute(
        """
        UPDATE job_runs SET state = 'queued', phase = $2, outcome = NULL, finished_at = NULL,
                            updated_at = now()
         WHERE id = $1 AND state = 'failed'
        """,
        run_id,
        SCHEDULED,
    )
    if not result.endswith(" 1"):
        return False
    await db.execute(
        """
        UPDATE posts SET status = CASE WHEN status = 'failed' THEN 'pending' ELSE status END,
                         error = NULL, publish_at = $2, updated_at = now()
         WHERE id = $1
        """,
        post_id,
        publish_at,
    )
    return True


async def mark_missed(db: Executor, *, run_id: int) -> bool:
    """The job found its time long past: back to queued, phase 'missed'. True the first
    time only (the requester is asked once)."""
    result: str = await db.execute(
        """
        UPDATE job_runs SET state = 'queued', phase = $2, updated_at = now()
         WHERE id = $1 AND state IN ('queued', 'running') AND phase IS DISTINCT FROM $2
        """,
        run_id,
        MISSED,
    )
    return result.endswith(" 1")


async def first_day_views(
    db: Executor, *, account_id: int, since: datetime
) -> list[tuple[datetime, float]]:
    """For each of the account's posts published since `since`: (published at, views in
    its first 24 hours), from stored snapshots only (the latest snapshot within 24 h of
    publishing). Posts with no such snapshot are left out."""
    rows = await db.fetch(
        """
        SELECT DISTINCT ON (s.platform_post_id)
               (s.metrics->>'published_at')::timestamptz AS published_at,
               (s.metrics->'views'->>'value')::float8 AS views
          FROM metric_snapshots s
         WHERE s.account_id = $1
           AND s.platform_post_id IS NOT NULL
           AND s.metrics ? 'published_at' AND s.metrics->'views' ? 'value'
           AND (s.metrics->>'published_at')::timestamptz >= $2
           AND s.captured_at <= (s.metrics->>'published_at')::timestamptz + interval '24 hours'
         ORDER BY s.platform_post_id, s.captured_at DESC
        """,
        account_id,
        since,
    )
    return [(r["published_at"], float(r["views"])) for r in rows]
