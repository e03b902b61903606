"""One status message per job, edited in place, from whichever worker runs the job.

`StatusBoard` is how a worker reaches the requester's channel without the request
that started the job (front-ends implement it in bot.job_board). The message's
reference is stored on the job's row, so a worker that picks the job up after a
restart edits the same message instead of starting another.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import asyncpg

from storage import job_runs
from storage.job_runs import JobRun

log = logging.getLogger(__name__)


class StatusBoard(Protocol):
    """Post and edit messages where a job's requester asked (`reply_to`)."""

    async def post(self, reply_to: dict[str, Any], text: str) -> str | None:
        """Post a message; its reference for `edit`, or None if it cannot be edited."""

    async def edit(self, reply_to: dict[str, Any], message_ref: str, text: str) -> None:
        """Replace the text of a message `post` returned."""


class StatusMessage:
    """The status message of one job. Telling never fails the job: errors are logged."""

    def __init__(self, pool: asyncpg.Pool, board: StatusBoard, run: JobRun) -> None:
        self._pool = pool
        self._board = board
        self._run_id = run.id
        self._reply_to = run.reply_to
        self._ref = run.message_ref
        self._shown: str | None = None

    async def show(self, text: str) -> None:
        if text == self._shown or not self._reply_to:
            return
        try:
            if self._ref is None:
                ref = await self._board.post(self._reply_to, text)
                if ref is not None:
                    self._ref = ref
                    await job_runs.set_message(self._pool, self._run_id, ref)
            else:
                await self._board.edit(self._reply_to, self._ref, text)
        except Exception as exc:  # telling is cosmetic next to the job: log, go on
            log.warning(
                "job status message not updated",
                extra={"job": self._run_id, "error": type(exc).__name__},
            )
            return
        self._shown = text


def job_line(run: JobRun) -> str:
    """One line for `status`: the job, what it is, where it stands.

    The label says what the job does in full ("upload 'T' to ..."), as `cancel` shows it;
    the kind stands in only for a job without one."""
    where = run.outcome if run.ended and run.outcome else describe(run)
    return f"job {run.id} ({run.label or run.kind}): {where}"


def describe(run: JobRun) -> str:
    """Where an unfinished job stands, in words."""
    if run.state == "queued" and run.phase is None:
        return "queued"
    if run.phase == "uploading" and run.percent is not None:
        return f"uploading {run.percent}%"
    return run.phase or run.state
