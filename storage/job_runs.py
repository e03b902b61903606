"""What a person sees of a background job: state, progress, one outcome, one message.

The engine (storage.queue) decides who runs a job and when; this row is ours. It
says where the requester asked (`reply_to`), which message shows the job's status
(`message_ref`, so a worker after a restart edits the same message), and the
final outcome, written once: `finish` only moves a job that has not ended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from storage.types import Executor

State = Literal["queued", "running", "done", "failed", "cancelled"]
ENDED: tuple[State, ...] = ("done", "failed", "cancelled")

_COLUMNS = (
    "id, kind, workspace_id, chat_user_id, post_id, label, state, phase, percent, outcome,"
    " reply_to, message_ref, attempts, created_at, updated_at, finished_at"
)


@dataclass(frozen=True, slots=True)
class JobRun:
    id: int
    kind: str
    workspace_id: int | None
    chat_user_id: int | None
    post_id: int | None
    label: str
    state: State
    phase: str | None
    percent: int | None
    outcome: str | None
    reply_to: dict[str, Any]
    message_ref: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @classmethod
    def from_row(cls, row: Any) -> JobRun:
        reply_to = row["reply_to"]
        return cls(
            id=row["id"],
            kind=row["kind"],
            workspace_id=row["workspace_id"],
            chat_user_id=row["chat_user_id"],
            post_id=row["post_id"],
            label=row["label"],
            state=row["state"],
            phase=row["phase"],
            percent=row["percent"],
            outcome=row["outcome"],
            reply_to=json.loads(reply_to) if isinstance(reply_to, str) else dict(reply_to),
            message_ref=row["message_ref"],
            attempts=row["attempts"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
        )


async def create(
    db: Executor,
    *,
    kind: str,
    workspace_id: int,
    chat_user_id: int,
    label: str,
    reply_to: dict[str, Any],
    post_id: int | None = None,
) -> JobRun:
    """A new queued job; for a post that already has one, that one (one job per post)."""
    row = await db.fetchrow(
        f"""
        INSERT INTO job_runs (kind, workspace_id, chat_user_id, post_id, label, reply_to)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb)
        ON CONFLICT (post_id) DO UPDATE SET updated_at = job_runs.updated_at
        RETURNING {_COLUMNS}
        """,
        kind,
        workspace_id,
        chat_user_id,
        post_id,
        label,
        json.dumps(reply_to),
    )
    return JobRun.from_row(row)


async def get(db: Executor, run_id: int) -> JobRun | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM job_runs WHERE id = $1", run_id)
    return JobRun.from_row(row) if row else None


async def start(db: Executor, run_id: int) -> JobRun | None:
    """A worker begins (or resumes) the job: running, one more attempt. None if it ended."""
    row = await db.fetchrow(
        f"""
        UPDATE job_runs SET state = 'running', attempts = attempts + 1, updated_at = now()
         WHERE id = $1 AND state IN ('queued', 'running')
        RETURNING {_COLUMNS}
        """,
        run_id,
    )
    return JobRun.from_row(row) if row else None


async def set_progress(
    db: Executor, run_id: int, *, phase: str, percent: int | None, requeued: bool = False
) -> None:
    """Record the phase (uploading, processing, retrying) while the job has not ended."""
    await db.execute(
        """
        UPDATE job_runs
           SET phase = $2, percent = $3, updated_at = now(),
               state = CASE WHEN $4 THEN 'queued' ELSE state END
         WHERE id = $1 AND state IN ('queued', 'running')
        """,
        run_id,
        phase,
        percent,
        requeued,
    )


async def set_message(db: Executor, run_id: int, message_ref: str) -> None:
    """Remember the status message, so later edits (from any worker) go to it."""
    await db.execute(
        "UPDATE job_runs SET message_ref = $2 WHERE id = $1 AND message_ref IS NULL",
        run_id,
        message_ref,
    )


async def finish(db: Executor, run_id: int, *, state: State, outcome: str) -> bool:
    """End the job with its one outcome; False if it had already ended (nothing changed)."""
    if state not in ENDED:
        raise ValueError(f"{state!r} is not a final state")
    result: str = await db.execute(
        """
        UPDATE job_runs
           SET state = $2, outcome = $3, phase = NULL, updated_at = now(), finished_at = now()
         WHERE id = $1 AND state IN ('queued', 'running')
        """,
        run_id,
        state,
        outcome,
    )
    return result.endswith(" 1")


async def cancel(
    db: Executor, *, run_id: int, workspace_id: int, chat_user_id: int
) -> JobRun | None:
    """Cancel the requester's job if it has neither ended nor published; None otherwise."""
    row = await db.fetchrow(
        f"""
        UPDATE job_runs r
           SET state = 'cancelled', outcome = 'Cancelled.', phase = NULL,
               updated_at = now(), finished_at = now()
         WHERE r.id = $1 AND r.workspace_id = $2 AND r.chat_user_id = $3
           AND r.state IN ('queued', 'running')
           AND NOT EXISTS (SELECT 1 FROM posts p
                            WHERE p.id = r.post_id AND p.status IN ('processing', 'published'))
        RETURNING {_COLUMNS}
        """,
        run_id,
        workspace_id,
        chat_user_id,
    )
    return JobRun.from_row(row) if row else None


async def list_for_requester(
    db: Executor, *, workspace_id: int, chat_user_id: int, limit: int = 10
) -> list[JobRun]:
    """The requester's unfinished jobs, then their most recent finished ones."""
    rows = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM job_runs
         WHERE workspace_id = $1 AND chat_user_id = $2
         ORDER BY (state IN ('queued', 'running')) DESC, created_at DESC
         LIMIT $3
        """,
        workspace_id,
        chat_user_id,
        limit,
    )
    return [JobRun.from_row(r) for r in rows]


async def purge_ended(db: Executor, *, older_than_days: int = 30) -> int:
    """Delete jobs that ended more than `older_than_days` ago; how many went."""
    result: str = await db.execute(
        "DELETE FROM job_runs WHERE finished_at < now() - make_interval(days => $1)",
        older_than_days,
    )
    return int(result.split()[-1])
