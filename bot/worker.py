"""The worker part: runs background jobs on PgQueuer, and the engine's periodic triggers.

Every replica runs the same handlers and schedules. The engine hands each job to
one worker (FOR UPDATE SKIP LOCKED, LISTEN/NOTIFY wakes idle workers at once),
keeps a heartbeat on it, and gives a job whose worker died (SIGKILL, lost
connection) to another worker once its heartbeat is `heartbeat_seconds` old. Cron
schedules live in Postgres too, so N replicas fire each tick once.

On stop (SIGTERM) the worker takes no new job and lets running ones finish within
the grace period; it never cancels one. A job still running when the process
exits is resumed elsewhere, from its own checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pgqueuer.core.qm import QueueManager
from pgqueuer.core.sm import SchedulerManager
from pgqueuer.errors import RetryRequested
from pgqueuer.models import Job, Schedule
from prometheus_client import Counter, Gauge, Histogram

from agent.jobs import RetryLater, backoff
from bot.telemetry import job_span
from storage.queue import decode
from storage.queue_listen import describe_wakeups, engine_queries

log = logging.getLogger(__name__)

JOBS = Counter(
    "socialops_jobs",
    "Background jobs run, by kind and outcome (done, retry, failed).",
    ["kind", "outcome"],
)
JOB_WAIT = Histogram(
    "socialops_job_queue_seconds",
    "From a job's due time to a worker starting it, by kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300),
)
JOBS_RUNNING = Gauge("socialops_jobs_running", "Jobs running in this process, by kind.", ["kind"])

Handler = Callable[[dict[str, Any]], Awaitable[None]]
# A job that raised something unexpected is retried this many times, then dropped.
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class JobKind:
    """A job the worker runs: its handler, and how many may run at once in the deployment."""

    handler: Handler
    concurrency: int = 0  # 0: no limit beyond the worker's own


@dataclass(frozen=True, slots=True)
class Trigger:
    """A cron schedule (UTC) whose function enqueues work; it runs on one replica a tick."""

    name: str
    cron: str
    func: Callable[[], Awaitable[object]]


class WorkerPart:
    """Runs the engine's queue and scheduler managers until stopped."""

    name = "worker"

    def __init__(
        self,
        *,
        pool: Callable[[], asyncpg.Pool],
        kinds: Mapping[str, JobKind],
        triggers: list[Trigger],
        max_concurrent: int = 20,
        heartbeat_seconds: float = 5.0,
        poll_seconds: float = 2.0,
        transaction_pooler: bool = False,
        direct_dsn: str | None = None,
    ) -> None:
        self._pool = pool
        # Behind a transaction pooler, LISTEN goes over `direct_dsn` or not at all (polling).
        self._pooler = transaction_pooler
        self._direct_dsn = direct_dsn
        self._kinds = dict(kinds)
        self._triggers = triggers
        self._max_concurrent = max_concurrent
        self._heartbeat = timedelta(seconds=heartbeat_seconds)
        self._poll = timedelta(seconds=poll_seconds)
        self._stopping = asyncio.Event()
        self._managers: list[QueueManager | SchedulerManager] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        log.info(
            describe_wakeups(
                transaction_pooler=self._pooler,
                direct_dsn=self._direct_dsn,
                poll_seconds=self._poll.total_seconds(),
            )
        )
        self._task = asyncio.create_task(self._supervise(), name="worker:engine")

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self, grace: float) -> None:
        """Take no new jobs; give running ones `grace` seconds; never cancel one."""
        self._stopping.set()
        for manager in self._managers:
            manager.shutdown.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait([self._task], timeout=grace)
        if not done:
            log.warning("jobs still running at the end of the grace period; they will resume")

    async def _supervise(self) -> None:
        """Run the managers; if the database drops them, start them again."""
        while not self._stopping.is_set():
            queue, scheduler = self._build()
            self._managers = [queue, scheduler]
            runs = [
                asyncio.create_task(
                    queue.run(
                        dequeue_timeout=self._poll,
                        batch_size=max(self._max_concurrent // 4, 1),
                        max_concurrent_tasks=self._max_concurrent,
                        heartbeat_timeout=self._heartbeat,
                    ),
                    name="worker:queue",
                ),
                asyncio.create_task(scheduler.run(), name="worker:schedules"),
            ]
            if self._stopping.is_set():  # stop() came while building
                queue.shutdown.set()
                scheduler.shutdown.set()
            await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
            queue.shutdown.set()
            scheduler.shutdown.set()
            results = await asyncio.gather(*runs, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures and not self._stopping.is_set():
                log.warning(
                    "job engine stopped; starting it again",
                    extra={"error": type(failures[0]).__name__},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=1.0)

    def _build(self) -> tuple[QueueManager, SchedulerManager]:
        pool = self._pool()
        queries = engine_queries(pool, transaction_pooler=self._pooler, direct_dsn=self._direct_dsn)
        queue = QueueManager(queries)
        for kind, spec in self._kinds.items():
            queue.entrypoint(kind, concurrency_limit=spec.concurrency, accepts_context=False)(
                _entrypoint(kind, spec.handler)
            )
        scheduler = SchedulerManager(
            engine_queries(pool, transaction_pooler=self._pooler, direct_dsn=self._direct_dsn)
        )
        for trigger in self._triggers:
            scheduler.schedule(trigger.name, trigger.cron, accepts_context=False)(
                _scheduled(trigger)
            )
        return queue, scheduler


def _entrypoint(kind: str, handler: Handler) -> Callable[[Job], Awaitable[None]]:
    async def run(job: Job) -> None:
        due = max(job.execute_after, job.created)
        JOB_WAIT.labels(kind).observe(max((datetime.now(UTC) - due).total_seconds(), 0.0))
        JOBS_RUNNING.labels(kind).inc()
        try:
            payload = decode(job.payload)
            with job_span(kind, payload):
                await handler(payload)
        except RetryLater as exc:
            JOBS.labels(kind, "retry").inc()
            raise RetryRequested(delay=timedelta(seconds=exc.delay), reason=exc.reason) from exc
        except Exception as exc:
            if job.attempts + 1 >= MAX_ATTEMPTS:
                JOBS.labels(kind, "failed").inc()
                log.exception("job failed for good", extra={"kind": kind, "job": int(job.id)})
                raise
            JOBS.labels(kind, "retry").inc()
            log.warning(
                "job failed; retrying",
                extra={"kind": kind, "job": int(job.id), "error": type(exc).__name__},
            )
            delay = timedelta(seconds=backoff(job.attempts + 1))
            raise RetryRequested(delay=delay, reason=type(exc).__name__) from exc
        finally:
            JOBS_RUNNING.labels(kind).dec()
        JOBS.labels(kind, "done").inc()

    return run


def _scheduled(trigger: Trigger) -> Callable[[Schedule], Awaitable[None]]:
    async def run(schedule: Schedule) -> None:
        try:
            await trigger.func()
        except Exception:
            log.exception("periodic trigger failed", extra={"trigger": trigger.name})

    return run
