"""Upload jobs: queued with their post row on approval, run by any worker, told once.

`queue_upload` writes the post row, the job's row and the engine's job in one
transaction. `run_upload_job` is the handler: it resumes from the platform's
offset, shows progress in the job's one status message, retries what is worth
retrying (honouring the platform's Retry-After), and ends with exactly one outcome.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from agent.context import Notify
from agent.jobs import RetryLater, backoff
from agent.jobs.status import StatusBoard, StatusMessage
from agent.layout import Layout, Section
from agent.ports import PlatformOps, UploadOutcome
from agent.post_actions import post_actions
from integrations.base import UploadRequest
from integrations.errors import IntegrationError, InvalidRequest
from storage import job_runs, posts, queue, schedule
from storage.identity import Identity
from storage.job_runs import JobRun
from storage.types import Executor

log = logging.getLogger(__name__)

# After this many attempts a retryable failure is final (the user is told, once).
MAX_ATTEMPTS = 8
# Postgres went away under the job (a restart, a cut connection): try again soon.
_DB_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)
# A deferred job that starts this much before its post's time waits again (the time moved).
_EARLY_SECONDS = 0.5


class UploadCancelled(InvalidRequest):
    """The requester cancelled the job before it published (never retried)."""


@dataclass(frozen=True, slots=True)
class UploadJob:
    """What an approved upload needs to become a job."""

    identity: Identity
    account_ref: str
    source: dict[str, Any]
    request: UploadRequest
    idempotency_key: str
    label: str
    reply_to: dict[str, Any]
    # A deferred post (its platform has no scheduling of its own): the job waits until
    # then. None: run now (a post now, or one the platform publishes at its time).
    run_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DueRules:
    """How a deferred post's job treats its time: run it if at most `grace` late,
    else keep it and ask the requester (privately, through `notify`)."""

    grace: timedelta
    notify: Notify


async def queue_upload(pool: asyncpg.Pool, ops: PlatformOps, job: UploadJob) -> JobRun:
    """Write the post row and queue its job, in one transaction; the job's row."""
    async with pool.acquire() as conn, conn.transaction():
        post = await ops.prepare_upload(
            job.identity,
            account_ref=job.account_ref,
            source=job.source,
            request=job.request,
            idempotency_key=job.idempotency_key,
            db=conn,
        )
        run = await job_runs.create(
            conn,
            kind=queue.UPLOAD,
            workspace_id=job.identity.workspace_id,
            chat_user_id=job.identity.chat_user_id,
            label=job.label,
            reply_to=job.reply_to,
            post_id=post.id,
        )
        if not run.ended:
            await enqueue_run(conn, run.id, post.id, job.run_at)
    return run


async def enqueue_run(
    conn: Executor, run_id: int, post_id: int, run_at: datetime | None
) -> int | None:
    """Queue (or re-queue) a post's upload job, deferred to `run_at` if given.

    A deferred job's payload says so: its handler then checks the post's time
    (which `reschedule` may have moved) before publishing.
    """
    if run_at is None:
        return await queue.enqueue(
            conn, queue.UPLOAD, {"run": run_id}, dedupe_key=f"upload:{post_id}"
        )
    await job_runs.set_progress(conn, run_id, phase=schedule.SCHEDULED, percent=None)
    key = f"upload:{post_id}"
    job_id = await queue.enqueue(
        conn, queue.UPLOAD, {"run": run_id, "deferred": True}, dedupe_key=key
    )
    await queue.move(conn, key, run_at)  # due at the exact instant (same transaction)
    return job_id


def done_text(label: str, outcome: UploadOutcome) -> str:
    result = outcome.result
    where = f" {result.url}" if result.url else ""
    note = f" The platform set it to {result.privacy}." if result.privacy_forced else ""
    return f"Done: {label}.{where}{note}"


async def run_upload_job(
    pool: asyncpg.Pool,
    ops: PlatformOps,
    board: StatusBoard,
    run_id: int,
    *,
    deferred: bool = False,
    due: DueRules | None = None,
) -> None:
    """The upload job's handler. Raises RetryLater to be run again (same job).

    A `deferred` job (a scheduled post its platform cannot schedule) publishes at
    the post's time: early (the time was moved later) it waits again; more than
    `due.grace` late (no worker ran then) it publishes nothing and asks the requester.
    """
    run = await job_runs.start(pool, run_id)
    if run is None:
        # Ended before this attempt (cancelled, or finished by a worker that died
        # before the engine heard): show the outcome again, an idempotent edit.
        ended = await job_runs.get(pool, run_id)
        if ended is not None and ended.outcome:
            await StatusMessage(pool, board, ended).show(_final(ended, ended.outcome))
        return
    if run.post_id is None:
        raise ValueError(f"upload job {run_id} has no post")
    if deferred and not await _due_now(pool, run, due):
        return
    message = StatusMessage(pool, board, run)
    if run.attempts > 1 and run.percent is not None and run.phase == "uploading":
        await message.show(f"{run.label}: resumed after a restart, {run.percent}%")
    elif run.attempts == 1:
        await message.show(f"{run.label}: queued")
    tracker = _Progress(pool, message, run)
    try:
        outcome = await ops.run_upload(run.post_id, tracker)
    except UploadCancelled:
        await _tell_final(pool, message, run, "cancelled", "Cancelled before it was published.")
        return
    except IntegrationError as exc:
        if await _failed(pool, message, run, exc) and deferred and due is not None:
            # Nobody may be watching at the post's time: say it privately too, once.
            text = (
                f"Your scheduled {run.label} failed: {exc.user_message} Say"
                f" `reschedule {run.id} in 5m` (or another time) to try again."
            )
            failed = Layout(
                title=f"Scheduled post {run.id} failed",
                sections=(
                    Section(
                        "",
                        body=f"{run.label}: {exc.user_message}",
                        actions=post_actions(run.id, failed=True),
                    ),
                ),
            )
            await _tell_privately(due, run, text, layout=failed)
        return
    except _DB_LOST as exc:
        raise RetryLater(1.0, f"database connection lost ({type(exc).__name__})") from exc
    await _tell_final(pool, message, run, "done", done_text(run.label, outcome))


def _final(run: JobRun, outcome: str) -> str:
    return outcome if run.state == "done" else f"{run.label}: {outcome}"


async def _due_now(pool: asyncpg.Pool, run: JobRun, due: DueRules | None) -> bool:
    """Whether a deferred post publishes now; if not, it waits again or is kept as missed."""
    post = await posts.get(pool, run.post_id) if run.post_id is not None else None
    if post is None or post.publish_at is None:
        return True
    now = datetime.now(UTC)
    early = (post.publish_at - now).total_seconds()
    if early > _EARLY_SECONDS:
        # Moved later after this job was queued: wait for the new time.
        await job_runs.set_progress(
            pool, run.id, phase=schedule.SCHEDULED, percent=None, requeued=True
        )
        raise RetryLater(early, "not due yet")
    if due is None or run.phase != schedule.SCHEDULED or now - post.publish_at <= due.grace:
        return True  # on time, or already under way at its time (a resumed or retried job)
    if await schedule.mark_missed(pool, run_id=run.id):
        await _tell_privately(
            due,
            run,
            f"Your {run.label} was due at {post.publish_at:%Y-%m-%d %H:%M} UTC, but no worker"
            f" was running then, so nothing was published. Say `reschedule {run.id} in 5m`"
            f" (or another time) to post it, or `cancel {run.id}`.",
        )
    return False


async def _tell_privately(
    due: DueRules, run: JobRun, text: str, *, layout: Layout | None = None
) -> None:
    frontend = str(run.reply_to.get("frontend") or "")
    if frontend:
        await due.notify(frontend, run.reply_to, text, layout=layout)


async def _tell_final(
    pool: asyncpg.Pool, message: StatusMessage, run: JobRun, state: job_runs.State, text: str
) -> bool:
    """Record the one outcome, then show it (a re-run re-shows the same text).

    True when this call recorded it (the one time it is told)."""
    if await job_runs.finish(pool, run.id, state=state, outcome=text):
        await message.show(text if state == "done" else f"{run.label}: {text}")
        return True
    ended = await job_runs.get(pool, run.id)  # someone else ended it (a cancel): show theirs
    if ended is not None and ended.outcome:
        await message.show(_final(ended, ended.outcome))
    return False


async def _failed(
    pool: asyncpg.Pool, message: StatusMessage, run: JobRun, exc: IntegrationError
) -> bool:
    """Retry what may pass (Retry-After first, else backoff); otherwise fail, once.

    True when this call recorded the final failure."""
    retry = exc.retryable and exc.reason != "limiter_unavailable" and run.attempts < MAX_ATTEMPTS
    if not retry:
        return await _tell_final(pool, message, run, "failed", f"failed: {exc.user_message}")
    delay = exc.retry_after if exc.retry_after is not None else backoff(run.attempts)
    await job_runs.set_progress(pool, run.id, phase="retrying", percent=run.percent, requeued=True)
    await message.show(
        f"{run.label}: {exc.user_message} Trying again in {max(1, math.ceil(delay))} s."
    )
    raise RetryLater(delay, exc.user_message) from exc


class _Progress:
    """The upload's progress callback: status every 5 %, and the cancel check."""

    def __init__(self, pool: asyncpg.Pool, message: StatusMessage, run: JobRun) -> None:
        self._pool = pool
        self._message = message
        self._run = run
        self._last = -1

    async def __call__(self, done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, math.floor(done * 100 / total))
        if percent < 100 and percent - self._last < 5:
            return
        self._last = percent
        current = await job_runs.get(self._pool, self._run.id)
        if current is not None and current.state == "cancelled":
            raise UploadCancelled("Cancelled.", platform="jobs", reason="cancelled")
        phase = "processing" if percent >= 100 else "uploading"
        await job_runs.set_progress(self._pool, self._run.id, phase=phase, percent=percent)
        label = self._run.label
        text = (
            f"{label}: processing…" if phase == "processing" else f"{label}: uploading {percent}%"
        )
        await self._message.show(text)
