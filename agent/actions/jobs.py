"""The requester's background jobs: what is running and what ended lately; cancelling one."""

from __future__ import annotations

from agent.actions import approvals
from agent.actions.base import ActionError, Outcome
from agent.context import ActionContext, Progress
from agent.jobs.status import job_line
from storage import job_runs


async def show_status(ctx: ActionContext) -> Outcome:
    """The requester's running jobs first, then their recent ones."""
    ident = ctx.identity
    runs = await job_runs.list_for_requester(
        ctx.deps.pool, workspace_id=ident.workspace_id, chat_user_id=ident.chat_user_id
    )
    if not runs:
        return Outcome("You have no jobs yet.")
    return Outcome("Your jobs:\n" + "\n".join(f"- {job_line(run)}" for run in runs))


async def cancel(ctx: ActionContext, job: str) -> Outcome:
    """Stop one of the requester's jobs that has not published yet.

    A queued job never starts; a running upload stops at its next progress step and
    gives back its quota if nothing reached the platform.
    """
    digits = job.strip().lstrip("#")
    if not digits.isdigit() or len(digits) > 18:
        raise ActionError("Name the job by its number, as `status` shows it: `cancel 12`.")
    ident = ctx.identity
    run = await job_runs.cancel(
        ctx.deps.pool,
        run_id=int(digits),
        workspace_id=ident.workspace_id,
        chat_user_id=ident.chat_user_id,
    )
    if run is not None:
        return Outcome(f"Cancelled job {run.id} ({run.label}).")
    found = await job_runs.get(ctx.deps.pool, int(digits))
    if found is None or (found.workspace_id, found.chat_user_id) != (
        ident.workspace_id,
        ident.chat_user_id,
    ):
        raise ActionError(f"You have no job {digits}.")
    if found.ended:
        raise ActionError(f"Job {found.id} has already ended: {found.outcome}")
    raise ActionError(f"Job {found.id} has already published; it can no longer be cancelled.")


async def request_cancel(ctx: ActionContext, job: str) -> Outcome:
    """For the assistant: cancelling waits for the person's approval, like every side effect."""
    digits = job.strip().lstrip("#")
    if not digits.isdigit() or len(digits) > 18:
        raise ActionError("Name the job by its number, as `status` shows it.")
    return await approvals.propose(ctx, "cancel", {"job": digits}, f"Cancel job {digits}")


async def execute_cancel(
    ctx: ActionContext, pending: approvals.PendingAction, progress: Progress | None
) -> str:
    return (await cancel(ctx, str(pending.args["job"]))).text
