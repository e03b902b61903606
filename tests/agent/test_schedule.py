"""Scheduled posts end to end on the real job engine and the fake Google.

YouTube schedules natively (upload now, private, `status.publishAt`); the deferred
path (a platform with no scheduling API) is exercised here on the same fake with
`scheduling.native` off, and against the fake Instagram in tests/bot.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from agent.actions import approvals, schedule, upload
from agent.actions.base import ActionError
from agent.commands import Command, execute, parse
from agent.context import ActionContext, ChatProfile, Deps
from agent.jobs.upload import DueRules, UploadJob, queue_upload, run_upload_job
from agent.layout import Layout
from agent.session import ChatContext
from bot.worker import JobKind
from integrations.base import UploadRequest
from integrations.capabilities import Scheduling
from storage import job_runs, posts, queue
from storage.identity import Identity
from tests.chat_fixtures import ops_for
from tests.fakes.google import FakeGoogle
from tests.fakes.platforms import directory
from tests.jobs_fixtures import run_worker_until

CHUNK = 256 * 1024


@pytest.fixture
def pool(fresh_pool: asyncpg.Pool) -> asyncpg.Pool:
    """Each test on a database of its own: the engine's queue holds only its jobs."""
    return fresh_pool


@dataclass
class Told:
    """The status board and the private notifier, recording what they were given."""

    board: list[str] = field(default_factory=list)
    private: list[str] = field(default_factory=list)

    async def post(self, reply_to: dict[str, Any], text: str) -> str | None:
        self.board.append(text)
        return "msg-1"

    async def edit(self, reply_to: dict[str, Any], message_ref: str, text: str) -> None:
        self.board.append(text)

    layouts: list[Layout | None] = field(default_factory=list)

    async def notify(
        self, frontend: str, reply_to: dict[str, Any], text: str, *, layout: Layout | None = None
    ) -> bool:
        self.private.append(text)
        self.layouts.append(layout)
        return True


@dataclass
class World:
    pool: asyncpg.Pool
    deps: Deps
    ctx: ActionContext
    google: FakeGoogle
    told: Told
    tmp: Path
    account_ref: str

    def source(self, size: int = CHUNK + 11) -> dict[str, Any]:
        path = self.tmp / f"clip-{secrets.token_hex(3)}.mp4"
        path.write_bytes(os.urandom(size))
        return {"kind": "file", "path": str(path), "size": size, "mime_type": "video/mp4"}

    async def handler(self, payload: dict[str, Any], grace: timedelta) -> None:
        await run_upload_job(
            self.pool,
            ops_for(self.deps),
            self.told,
            int(payload["run"]),
            deferred=bool(payload.get("deferred")),
            due=DueRules(grace=grace, notify=self.told.notify),
        )

    def kinds(self, grace: timedelta = timedelta(minutes=15)) -> dict[str, JobKind]:
        return {queue.UPLOAD: JobKind(lambda p: self.handler(p, grace))}

    async def schedule(self, at: datetime, title: str = "Later") -> job_runs.JobRun:
        """A deferred post queued as an approval would queue it."""
        return await queue_upload(
            self.pool,
            ops_for(self.deps),
            UploadJob(
                identity=self.ctx.identity,
                account_ref=self.account_ref,
                source=self.source(),
                request=UploadRequest(title=title, privacy="public", publish_at=at),
                idempotency_key="k-" + secrets.token_hex(6),
                label=f"upload '{title}'",
                reply_to={"frontend": "local", "user_id": "U1"},
                run_at=at,
            ),
        )


def _world(
    pool: asyncpg.Pool,
    deps: Deps,
    identity: Identity,
    google: FakeGoogle,
    tmp_path: Path,
    account_ref: str,
    *,
    native: bool,
    profile: ChatProfile = ChatProfile(),
) -> World:
    platform = deps.platforms.client("youtube")
    if not native:
        platform.capabilities = replace(platform.capabilities, scheduling=Scheduling())
    told = Told()

    async def chat_profile(who: Identity) -> ChatProfile:
        return profile

    deps = replace(deps, platforms=directory(platform), chat_profile=chat_profile)
    deps = replace(deps, ops=ops_for(deps), notify=told.notify)
    ctx = ActionContext(identity=identity, deps=deps)
    return World(pool, deps, ctx, google, told, tmp_path, account_ref)


@pytest.fixture
async def native(pool, deps, identity, google, tmp_path, link_account) -> World:
    account, _, _ = await link_account(identity)
    return _world(pool, deps, identity, google, tmp_path, account.ref, native=True)


@pytest.fixture
async def deferred(pool, deps, identity, google, tmp_path, link_account) -> World:
    account, _, _ = await link_account(identity)
    return _world(pool, deps, identity, google, tmp_path, account.ref, native=False)


async def _ended(pool: asyncpg.Pool, run_id: int) -> bool:
    run = await job_runs.get(pool, run_id)
    return run is not None and run.ended


async def _approve(w: World, outcome: Any) -> str:
    assert outcome.approval is not None, outcome.text
    return await approvals.resolve(w.ctx, outcome.approval.action_id, approved=True)


async def test_youtube_uploads_now_with_publish_at_at_the_right_instant(native: World) -> None:
    w = native
    await schedule.set_timezone(w.ctx, "Europe/Paris")
    paris = ZoneInfo("Europe/Paris")
    tomorrow = datetime.now(UTC).astimezone(paris).date() + timedelta(days=1)
    expected = datetime.combine(tomorrow, time(18, 0), tzinfo=paris).astimezone(UTC)
    outcome = await upload.request_upload(
        w.ctx,
        platform="youtube",
        account=None,
        source=w.source(),
        source_name="clip.mp4",
        title="Launch",
        privacy="public",
        publish_at="at 18:00 tomorrow",
    )
    assert outcome.approval is not None
    # The approval shows the time in the requester's zone and in UTC.
    assert f"18:00 Europe/Paris ({expected:%H:%M} UTC" in outcome.approval.summary
    answer = await _approve(w, outcome)
    assert answer.startswith("Scheduled as post ")
    run_id = int(answer.split()[3])
    # Native: the job is due now (the platform waits), not at the post's time.
    due = await w.pool.fetchval("SELECT execute_after FROM pgqueuer")
    assert due < expected - timedelta(hours=1)
    await run_worker_until(w.pool, w.kinds(), lambda: _ended(w.pool, run_id))
    [session] = w.google.sessions.values()
    status = session.metadata["status"]
    assert status["publishAt"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["privacyStatus"] == "private"  # public at publishAt, by YouTube
    run = await job_runs.get(w.pool, run_id)
    assert run is not None and run.state == "done"
    assert run.outcome is not None and "set it to" not in run.outcome  # not "forced private"
    listed = (await schedule.show_queue(w.ctx)).text
    assert f"- {run_id}: " in listed and "YouTube publishes it then" in listed
    # Already on YouTube: moving it moves YouTube's publishAt; cancelling clears it.
    later = expected + timedelta(hours=1)
    outcome = await schedule.request_reschedule(w.ctx, str(run_id), later.isoformat())
    assert (await _approve(w, outcome)).endswith("YouTube publishes it then.")
    video = w.google.videos[session.video_id]
    assert video["status"]["publishAt"] == later.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert video["status"]["privacyStatus"] == "private"
    assert video["status"]["selfDeclaredMadeForKids"] is False  # the rest of status kept
    found = await schedule.find_scheduled(w.ctx, str(run_id))
    assert found is not None and found.publish_at == later
    answer = await _approve(w, await schedule.request_cancel(w.ctx, found))
    assert answer.startswith(f"Cancelled post {run_id}: it stays private on YouTube")
    assert "publishAt" not in video["status"] and video["status"]["privacyStatus"] == "private"
    assert len(w.google.status_updates) == 2
    assert "empty" in (await schedule.show_queue(w.ctx)).text


async def test_no_zone_is_never_guessed_and_the_window_is_checked(native: World) -> None:
    w = native
    args = {
        "platform": "youtube",
        "account": None,
        "source_name": "clip.mp4",
        "title": "T",
    }
    with pytest.raises(ActionError, match="timezone Area/City"):
        await upload.request_upload(w.ctx, source=w.source(), publish_at="at 18:00", **args)
    with pytest.raises(ActionError, match="more than 90 days"):
        await upload.request_upload(w.ctx, source=w.source(), publish_at="in 91d", **args)
    with pytest.raises(ActionError, match="in the past"):
        await upload.request_upload(
            w.ctx, source=w.source(), publish_at="2020-01-01T10:00+00:00", **args
        )
    # YouTube makes a scheduled video public at its time: another privacy is refused.
    with pytest.raises(ActionError, match="publishes a scheduled post as public"):
        await upload.request_upload(
            w.ctx, source=w.source(), publish_at="in 2h", privacy="unlisted", **args
        )
    # Nothing was proposed.
    assert not await w.pool.fetchval("SELECT count(*) FROM pending_actions")
    # No privacy given: the scheduled one, whatever the upload default is.
    outcome = await upload.request_upload(w.ctx, source=w.source(), publish_at="in 2h", **args)
    assert outcome.approval is not None and "(public), scheduled for" in outcome.approval.summary


async def test_chat_profile_zone_is_used_and_the_setting_wins(pool, native: World) -> None:
    w = native
    ctx = replace(
        w.ctx,
        deps=replace(
            w.deps, chat_profile=lambda who: _profile(ChatProfile(time_zone="Asia/Tokyo"))
        ),
    )
    zone, where = await schedule.requester_zone(ctx)
    assert zone == ZoneInfo("Asia/Tokyo") and where == "your chat profile"
    await schedule.set_timezone(ctx, "America/New_York")
    zone, where = await schedule.requester_zone(ctx)
    assert zone == ZoneInfo("America/New_York") and "setting" in where
    with pytest.raises(ActionError, match="not a time zone"):
        await schedule.set_timezone(ctx, "Mars/Olympus")


async def _profile(profile: ChatProfile) -> ChatProfile:
    return profile


async def test_deferred_post_runs_at_its_instant_once(deferred: World) -> None:
    w = deferred
    at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    run = await w.schedule(at)
    assert await w.pool.fetchval("SELECT execute_after FROM pgqueuer") == at
    assert not w.google.sessions
    await run_worker_until(w.pool, w.kinds(), lambda: _ended(w.pool, run.id), workers=2)
    assert len(w.google.sessions) == 1
    [session] = w.google.sessions.values()
    assert "publishAt" not in session.metadata["status"]  # the bot published at the time
    assert run.post_id is not None
    post = await posts.get(w.pool, run.post_id)
    assert post is not None and post.status == "published"
    assert post.updated_at >= at  # published at (not before) its time


async def test_three_workers_publish_each_scheduled_post_exactly_once(deferred: World) -> None:
    w = deferred
    base = datetime.now(UTC) + timedelta(seconds=1)
    runs = [await w.schedule(base + timedelta(milliseconds=150 * i), f"P{i}") for i in range(12)]

    async def all_ended() -> bool:
        return all([await _ended(w.pool, r.id) for r in runs])

    await run_worker_until(w.pool, w.kinds(), all_ended, workers=3, timeout=60)
    assert len(w.google.sessions) == len(runs)
    titles = sorted(s.metadata["snippet"]["title"] for s in w.google.sessions.values())
    assert titles == sorted(f"P{i}" for i in range(12))
    for r in runs:
        current = await job_runs.get(w.pool, r.id)
        assert current is not None and current.state == "done" and current.attempts == 1


async def test_worker_down_past_grace_asks_once_then_reschedule_posts(deferred: World) -> None:
    w = deferred
    late = await w.schedule(datetime.now(UTC) - timedelta(hours=1), "Missed")
    await run_worker_until(w.pool, w.kinds(timedelta(minutes=15)), lambda: _no_live_jobs(w.pool))
    assert not w.google.sessions  # nothing published an hour late
    assert len(w.told.private) == 1
    assert f"reschedule {late.id}" in w.told.private[0]
    assert "missed its time" in (await schedule.show_queue(w.ctx)).text
    # The requester picks a new time; it publishes then, and they are not asked again.
    at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    outcome = await schedule.request_reschedule(w.ctx, str(late.id), at.isoformat())
    assert (await _approve(w, outcome)).startswith(f"Moved post {late.id}")
    await run_worker_until(w.pool, w.kinds(), lambda: _ended(w.pool, late.id))
    assert len(w.google.sessions) == 1 and len(w.told.private) == 1


async def test_worker_back_within_grace_still_publishes(deferred: World) -> None:
    w = deferred
    run = await w.schedule(datetime.now(UTC) - timedelta(seconds=30), "Slightly late")
    await run_worker_until(w.pool, w.kinds(timedelta(minutes=15)), lambda: _ended(w.pool, run.id))
    assert len(w.google.sessions) == 1 and not w.told.private


async def test_failure_at_its_time_is_told_privately_once(deferred: World) -> None:
    w = deferred
    run = await w.schedule(datetime.now(UTC) + timedelta(seconds=1), "Doomed")
    w.google.faults.insert_error = (403, "forbidden")
    w.google.faults.insert_error_times = 5
    await run_worker_until(w.pool, w.kinds(), lambda: _ended(w.pool, run.id))
    assert len(w.told.private) == 1
    assert w.told.private[0].startswith("Your scheduled upload 'Doomed' failed:")
    assert f"reschedule {run.id} in 5m" in w.told.private[0]
    # With a "Retry" button (and "Reschedule") where the front-end shows buttons.
    [failed] = w.told.layouts
    assert failed is not None
    assert [a.command for a in failed.sections[0].actions] == [
        f"reschedule {run.id} in 1m",
        f"reschedule {run.id}",
    ]
    assert failed.sections[0].actions[0].label == "Retry"
    assert not w.google.sessions
    # Retry: rescheduling the failed post runs it again at the new time.
    listed = (await schedule.show_queue(w.ctx)).text
    assert "Doomed" in listed and "failed: " in listed
    assert f"Retry: `reschedule {run.id} in 1m`" in listed
    w.google.faults.insert_error = None
    at = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    outcome = await schedule.request_reschedule(w.ctx, str(run.id), at.isoformat())
    assert (await _approve(w, outcome)).startswith(f"Post {run.id} will be tried again")
    await run_worker_until(w.pool, w.kinds(), lambda: _ended(w.pool, run.id))
    done = await job_runs.get(w.pool, run.id)
    assert done is not None and done.state == "done" and len(w.google.sessions) == 1
    assert len(w.told.private) == 1


async def test_cancel_and_reschedule_before_the_time_publish_nothing_then(
    deferred: World,
) -> None:
    w = deferred
    old = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    cancelled = await w.schedule(old, "Cancel me")
    moved = await w.schedule(old, "Move me")
    found = await schedule.find_scheduled(w.ctx, str(cancelled.id))
    assert found is not None
    answer = await _approve(w, await schedule.request_cancel(w.ctx, found))
    assert answer == f"Cancelled post {cancelled.id}; nothing will be published."
    new = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    outcome = await schedule.request_reschedule(w.ctx, str(moved.id), new.isoformat())
    assert "Move me" in outcome.text
    assert (await _approve(w, outcome)).startswith(f"Moved post {moved.id}")

    async def past_old_time() -> bool:
        return datetime.now(UTC) > old + timedelta(seconds=3)

    await run_worker_until(w.pool, w.kinds(), past_old_time)
    assert not w.google.sessions  # nothing at the old time
    dues = await w.pool.fetch("SELECT execute_after, status FROM pgqueuer")
    assert [(d["execute_after"], d["status"]) for d in dues] == [(new, "queued")]
    listed = (await schedule.show_queue(w.ctx)).text
    assert "Move me" in listed and "Cancel me" not in listed


async def test_queue_is_per_requester_and_workspace_view_is_for_admins(
    deferred: World, make_identity, link_account
) -> None:
    w = deferred
    await w.schedule(datetime.now(UTC) + timedelta(hours=2), "Mine")
    other = await make_identity(workspace=w.ctx.identity.workspace_external_id)
    await link_account(other)
    other_ctx = ActionContext(identity=other, deps=w.deps)
    assert "empty" in (await schedule.show_queue(other_ctx)).text
    with pytest.raises(ActionError, match="Only workspace admins"):
        await schedule.show_queue(other_ctx, workspace=True)

    async def no() -> bool:
        return False

    async def yes() -> bool:
        return True

    with pytest.raises(ActionError, match="Only workspace admins"):
        await schedule.show_queue(other_ctx, workspace=True, is_admin=no)
    assert "Mine" in (await schedule.show_queue(other_ctx, workspace=True, is_admin=yes)).text
    with pytest.raises(ActionError, match="no scheduled post"):
        await schedule.request_reschedule(other_ctx, "1", "in 2h")


async def _no_live_jobs(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval(
        "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked')"
    )


async def test_digest_lines_show_the_coming_day(deferred: World) -> None:
    w = deferred
    soon = datetime.now(UTC) + timedelta(hours=3)
    await w.schedule(soon, "Tonight")
    await w.schedule(datetime.now(UTC) + timedelta(days=2), "Later this week")
    paris = ZoneInfo("Europe/Paris")
    lines = await schedule.coming_day(
        w.deps, workspace_id=w.ctx.identity.workspace_id, zone=paris, now=datetime.now(UTC)
    )
    handle = await w.pool.fetchval(
        "SELECT handle FROM linked_accounts WHERE ref = $1", w.account_ref
    )
    expected = f"{soon.astimezone(paris):%a %H:%M} · YouTube @{handle.lstrip('@')} · “Tonight”"
    assert lines == [expected]
    assert not await schedule.coming_day(
        w.deps,
        workspace_id=w.ctx.identity.workspace_id,
        zone=paris,
        now=datetime.now(UTC),
        account_ids=[],
    )


async def test_typed_commands_reach_the_same_actions(deferred: World) -> None:
    w = deferred
    chat = ChatContext(action=w.ctx, channel_id="C1", allow_local_files=True)

    async def run(line: str) -> Any:
        parsed = parse(line, w.deps.platforms)
        assert isinstance(parsed, Command), line
        return await execute(parsed, chat)

    assert (await run("timezone")).text.startswith("I don't know your time zone yet")
    assert "Europe/Paris" in (await run("timezone Europe/Paris")).text
    path = w.source()["path"]
    outcome = await run(f'upload youtube {path} "From the shell" at 23:59 tomorrow')
    assert outcome.approval is not None and "23:59 Europe/Paris" in outcome.approval.summary
    answer = await _approve(w, outcome)
    run_id = int(answer.split()[3])
    assert "From the shell" in (await run("queue")).text
    # Cancelling a scheduled post asks first, like the post did.
    asked = await run(f"cancel {run_id}")
    assert asked.approval is not None and "Cancel scheduled post" in asked.approval.summary
    assert (await job_runs.get(w.pool, run_id)).state == "queued"  # type: ignore[union-attr]
    await _approve(w, asked)
    assert (await job_runs.get(w.pool, run_id)).state == "cancelled"  # type: ignore[union-attr]
    assert not await w.pool.fetchval("SELECT count(*) FROM pgqueuer")


async def test_a_job_that_wakes_before_a_moved_time_waits_for_it(deferred: World) -> None:
    """The race `reschedule` cannot win by moving the queued job (a worker holds it): the
    job finds the post's new time still ahead and runs again then."""
    w = deferred
    first = datetime.now(UTC) + timedelta(seconds=1)
    run = await w.schedule(first, "Moved under a worker")
    later = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    await w.pool.execute("UPDATE posts SET publish_at = $2 WHERE id = $1", run.post_id, later)
    await run_worker_until(w.pool, w.kinds(), lambda: _ended(w.pool, run.id))
    assert len(w.google.sessions) == 1 and not w.told.private
    assert run.post_id is not None
    post = await posts.get(w.pool, run.post_id)
    assert post is not None and post.status == "published" and post.updated_at >= later
