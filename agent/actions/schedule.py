"""Scheduled posts: the requester's time zone, the queue, moving and cancelling a post.

A scheduled post is named by its job number (as `queue` and `status` show it).
Reading a time goes through one place (`when_from`): the requester's zone (their
`timezone` setting, else what their chat platform says), never a guess, and the
window (not past, at most SCHEDULE_MAX_DAYS ahead) is checked before any approval.
Moving or cancelling a post needs the requester's approval, like the post did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.actions import approvals
from agent.actions.base import ActionError, NotAdmin, Outcome, platform_title
from agent.actions.schedule_time import When, check_window, parse_when, show, zone_named
from agent.context import ActionContext, AdminCheck, Deps, Progress
from agent.jobs.upload import enqueue_run
from agent.layout import Field, Layout, Section
from agent.ports import PlatformOps
from agent.post_actions import post_actions
from storage import job_runs, queue, schedule, user_settings
from storage.schedule import ScheduledPost


async def requester_zone(ctx: ActionContext) -> tuple[ZoneInfo | None, str]:
    """The requester's zone and where it comes from: their `timezone` setting (what they
    said wins), else their chat profile's; (None, "") when neither is known."""
    ident = ctx.identity
    name = await user_settings.get_time_zone(ctx.deps.pool, chat_user_id=ident.chat_user_id)
    if name:
        return zone_named(name), "your `timezone` setting"
    profile = await ctx.deps.chat_profile(ident)
    if profile.time_zone:
        try:
            return zone_named(profile.time_zone), "your chat profile"
        except ActionError:
            return None, ""
    return None, ""


async def when_from(ctx: ActionContext, phrase: str, zone_name: str | None = None) -> When:
    """A time phrase read in `zone_name` (an IANA zone) if given, else the requester's
    zone, inside the scheduling window."""
    zone = zone_named(zone_name) if zone_name else (await requester_zone(ctx))[0]
    now = datetime.now(UTC)
    when = parse_when(phrase.split(), now=now, zone=zone)
    if when.zone is None:
        when = When(when.at, zone)
    check_window(when, now=now, max_days=ctx.deps.config.schedule_max_days)
    return when


async def set_timezone(ctx: ActionContext, zone: str | None) -> Outcome:
    """Show the requester's zone, or set it (`timezone Europe/Paris`)."""
    if zone is None:
        found, where = await requester_zone(ctx)
        if found is None:
            return Outcome(
                "I don't know your time zone yet. Set it with `timezone Area/City`"
                " (e.g. `timezone Europe/Paris`)."
            )
        now = datetime.now(UTC).astimezone(found)
        return Outcome(f"Your time zone is {found.key} (from {where}); it is {now:%H:%M} there.")
    chosen = zone_named(zone)
    await user_settings.set_time_zone(
        ctx.deps.pool, chat_user_id=ctx.identity.chat_user_id, zone=chosen.key
    )
    now = datetime.now(UTC).astimezone(chosen)
    return Outcome(f"Your time zone is now {chosen.key} (it is {now:%H:%M} there).")


def _note(ctx: ActionContext, post: ScheduledPost) -> str:
    """What else a row says: failed (why), missed its time, or held by the platform."""
    if post.failed:
        reason = approvals.shorten(post.error or "unknown reason", 120)
        return f"failed: {reason}; `reschedule` it to try again"
    if post.phase == schedule.MISSED:
        return "missed its time: `reschedule` or `cancel` it"
    if post.uploaded:
        name = ctx.deps.platforms.capabilities(post.platform).display_name
        return f"uploaded; {name} publishes it then"
    return ""


def _row(ctx: ActionContext, post: ScheduledPost, zone: ZoneInfo | None) -> Section:
    caps = ctx.deps.platforms.capabilities(post.platform)
    title = approvals.shorten(post.title or "(untitled)", 80)
    note = _note(ctx, post)
    return Section(
        heading=f"{post.run_id}: {show(post.publish_at, zone)}",
        fields=(
            Field("Platform", caps.display_name),
            Field("Account", caps.handle(post.handle)),
            Field("Title", f"“{title}”"),
        ),
        body=note,
        colour=caps.colour,
        actions=post_actions(post.run_id, failed=post.failed),
    )


async def scheduled_posts(
    ctx: ActionContext, *, workspace: bool = False, is_admin: AdminCheck | None = None
) -> list[ScheduledPost]:
    """The requester's scheduled posts (or, for an admin, the workspace's), soonest first.

    `is_admin` is the message's own check (the same one `audit` uses)."""
    ident = ctx.identity
    if workspace and (is_admin is None or not await is_admin()):
        raise NotAdmin("Only workspace admins can see everyone's queue; `queue` shows yours.")
    return await schedule.list_scheduled(
        ctx.deps.pool,
        workspace_id=ident.workspace_id,
        chat_user_id=None if workspace else ident.chat_user_id,
    )


async def show_queue(
    ctx: ActionContext, *, workspace: bool = False, is_admin: AdminCheck | None = None
) -> Outcome:
    """The queue as chat shows it (`scheduled_posts`): one section per post with its
    "Cancel" and "Reschedule" buttons. A button is only its command: clicked on someone
    else's post (the workspace view), it is refused as typing it would be, since `cancel`
    and `reschedule` act on the clicker's own posts."""
    posts = await scheduled_posts(ctx, workspace=workspace, is_admin=is_admin)
    whose = "The workspace's" if workspace else "Your"
    if not posts:
        return Outcome(f"{whose} queue is empty: no scheduled posts.")
    zone, _ = await requester_zone(ctx)
    layout = Layout(
        title=f"{whose} scheduled posts",
        sections=tuple(_row(ctx, post, zone) for post in posts),
        notes=("Change one with `reschedule <number> <when>` or `cancel <number>`",),
    )
    return Outcome.laid_out(layout)


def _number(post: str) -> int:
    digits = post.strip().lstrip("#")
    if not digits.isdigit() or len(digits) > 18:
        raise ActionError(
            "Name the post by its number, as `queue` shows it: `reschedule 12 in 2h`."
        )
    return int(digits)


async def _own(ctx: ActionContext, run_id: int) -> ScheduledPost:
    """The requester's own scheduled post `run_id`, not yet published."""
    ident = ctx.identity
    post = await schedule.get(ctx.deps.pool, workspace_id=ident.workspace_id, run_id=run_id)
    if post is None or post.chat_user_id != ident.chat_user_id:
        raise ActionError(f"You have no scheduled post {run_id} (`queue` lists yours).")
    return post


def _ops(ctx: ActionContext) -> PlatformOps:
    if ctx.deps.ops is None:
        raise ActionError("Platform work is not available in this process.")
    return ctx.deps.ops


async def find_scheduled(ctx: ActionContext, job: str) -> ScheduledPost | None:
    """The requester's scheduled post by number, if `job` names one (else an ordinary job)."""
    digits = job.strip().lstrip("#")
    if not digits.isdigit() or len(digits) > 18:
        return None
    ident = ctx.identity
    post = await schedule.get(ctx.deps.pool, workspace_id=ident.workspace_id, run_id=int(digits))
    return post if post is not None and post.chat_user_id == ident.chat_user_id else None


def _describe(ctx: ActionContext, post: ScheduledPost, zone: ZoneInfo | None) -> str:
    caps = ctx.deps.platforms.capabilities(post.platform)
    title = approvals.shorten(post.title or "(untitled)", 80)
    return (
        f"scheduled post {post.run_id} (“{title}” on {caps.display_name}"
        f" {caps.handle(post.handle)}, due {show(post.publish_at, zone)})"
    )


async def request_reschedule(
    ctx: ActionContext, post: str, when: str, zone_name: str | None = None
) -> Outcome:
    """Check the post and the new time now (read in `zone_name` if given, as in
    `when_from`), then ask for approval.

    Without a time (the "Reschedule" button), the answer is the command to complete:
    the same words work typed in any front-end, and nothing waits on a dialog."""
    found = await _own(ctx, _number(post))
    if not when.strip():
        zone, _ = await requester_zone(ctx)
        return Outcome(
            f"To move {_describe(ctx, found, zone)}, send"
            f" `reschedule {found.run_id} <when>`, e.g. `reschedule {found.run_id} in 2h`"
            f" or `reschedule {found.run_id} tomorrow 18:00`."
        )
    new = await when_from(ctx, when, zone_name)
    args = {"run": found.run_id, "publish_at": new.at.isoformat()}
    summary = f"Move {_describe(ctx, found, new.zone)} to {show(new.at, new.zone)}"
    return await approvals.propose(ctx, "reschedule", args, summary)


async def execute_reschedule(
    ctx: ActionContext, pending: approvals.PendingAction, progress: Progress | None
) -> str:
    """Move the post: its time, and its job's (one transaction; a started job is refused)."""
    found = await _own(ctx, int(pending.args["run"]))
    at = datetime.fromisoformat(str(pending.args["publish_at"]))
    if at <= datetime.now(UTC):
        raise ActionError("That time passed while waiting for approval; nothing was changed.")
    zone, _ = await requester_zone(ctx)
    if found.uploaded:
        # The platform holds it (native scheduling): it moves it.
        await _ops(ctx).set_publish_time(found.post_id, at)
        name = platform_title(ctx, found.platform)
        return f"Moved post {found.run_id} to {show(at, zone)}; {name} publishes it then."
    if found.failed:
        # Tried again: the job runs at the new time (now, if the platform schedules itself).
        native = ctx.deps.platforms.capabilities(found.platform).scheduling.native
        async with ctx.deps.pool.acquire() as conn, conn.transaction():
            if not await schedule.revive(
                conn, run_id=found.run_id, post_id=found.post_id, publish_at=at
            ):
                raise ActionError(f"Post {found.run_id} is no longer failed; nothing was changed.")
            await enqueue_run(conn, found.run_id, found.post_id, None if native else at)
        return f"Post {found.run_id} will be tried again for {show(at, zone)}."
    async with ctx.deps.pool.acquire() as conn, conn.transaction():
        if not await schedule.move(conn, run_id=found.run_id, post_id=found.post_id, publish_at=at):
            raise ActionError(
                f"Post {found.run_id} is being published right now; too late to move."
            )
        # The queued job runs at the new time; a missed post (its job over) gets a new job.
        # A job already picked but not started waits again when it sees the new time.
        if not await queue.move(conn, f"upload:{found.post_id}", at):
            await enqueue_run(conn, found.run_id, found.post_id, at)
    return f"Moved post {found.run_id} to {show(at, zone)}."


async def request_cancel(ctx: ActionContext, post: ScheduledPost) -> Outcome:
    """Cancelling a scheduled post waits for approval, like the post did."""
    found = await _own(ctx, post.run_id)
    if found.failed:
        raise ActionError(f"Post {found.run_id} failed already; nothing will be published.")
    zone, _ = await requester_zone(ctx)
    summary = f"Cancel {_describe(ctx, found, zone)}"
    return await approvals.propose(ctx, "cancel_scheduled", {"run": found.run_id}, summary)


async def execute_cancel(
    ctx: ActionContext, pending: approvals.PendingAction, progress: Progress | None
) -> str:
    found = await _own(ctx, int(pending.args["run"]))
    if found.uploaded:
        await _ops(ctx).set_publish_time(found.post_id, None)
        name = platform_title(ctx, found.platform)
        return (
            f"Cancelled post {found.run_id}: it stays private on {name} and will not be"
            " published (delete it there if you no longer need it)."
        )
    ident = ctx.identity
    async with ctx.deps.pool.acquire() as conn, conn.transaction():
        run = await job_runs.cancel(
            conn,
            run_id=found.run_id,
            workspace_id=ident.workspace_id,
            chat_user_id=ident.chat_user_id,
        )
        if run is None:
            raise ActionError(f"Post {found.run_id} is being published right now; too late.")
        # Its queued job goes too (it would only find the post cancelled).
        await queue.drop(conn, f"upload:{found.post_id}")
    return f"Cancelled post {found.run_id}; nothing will be published."


async def coming_day(
    ctx_deps: Deps,
    *,
    workspace_id: int,
    zone: ZoneInfo,
    now: datetime,
    account_ids: Sequence[int] | None = None,
) -> list[str]:
    """For a digest: one line per post scheduled in the next 24 hours (of the digest's
    member accounts when given), times in the digest's zone; [] when none.

    The digest builder adds these under a heading such as "Scheduled for the next day".
    """
    due = await schedule.due_between(
        ctx_deps.pool,
        workspace_id=workspace_id,
        start=now,
        end=now + timedelta(days=1),
        account_ids=account_ids,
    )
    lines = []
    for post in due:
        caps = ctx_deps.platforms.capabilities(post.platform)
        title = approvals.shorten(post.title or "(untitled)", 80)
        lines.append(
            f"{post.publish_at.astimezone(zone):%a %H:%M} · {caps.display_name}"
            f" {caps.handle(post.handle)} · “{title}”"
        )
    return lines
