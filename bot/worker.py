"""The worker part: an APScheduler for periodic sweeps.

Jobs registered here must be safe on several replicas at once (they claim work
through Postgres leases), so every replica can run the same schedule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    seconds: float
    func: Callable[[], Awaitable[object]]


class WorkerPart:
    """Runs periodic jobs; on stop, no new runs start and running ones finish."""

    name = "worker"

    def __init__(self, jobs: list[PeriodicJob]) -> None:
        self._jobs = jobs
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._running: set[asyncio.Task[object]] = set()
        self._stopped = asyncio.Event()

    def _wrap(self, job: PeriodicJob) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)  # type: ignore[arg-type]
            try:
                await job.func()
            except Exception:
                log.exception("periodic job failed", extra={"job": job.name})
            finally:
                if task is not None:
                    self._running.discard(task)  # type: ignore[arg-type]

        return run

    async def start(self) -> None:
        for job in self._jobs:
            self._scheduler.add_job(
                self._wrap(job),
                "interval",
                seconds=job.seconds,
                id=job.name,
                max_instances=1,
                coalesce=True,
            )
        self._scheduler.start()

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self, grace: float) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        self._stopped.set()
