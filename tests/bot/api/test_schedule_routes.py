"""Scheduled posts through /api/v1: a time on POST /uploads, the queue, cancel and
reschedule through approvals, best time. Real Postgres and Redis, the chat actions.

Each app user here is connected in chat first; platform work is the recording FakeOps
(an approved upload writes its post row and queues its job, nothing is uploaded).
"""

from __future__ import annotations

import inspect
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from agent.actions import best_time, schedule
from agent.actions import upload as uploads
from bot.api import models
from storage import approvals as approval_store
from storage import metrics
from storage.identity import Identity
from tests.bot.api.test_routes import (  # noqa: F401
    assert_problem,
    auth,
    connect,
    deps,
    fresh_subjects,
    make_client,
    upload_dir,
)
from tests.chat_fixtures import action_ctx
from tests.fakes.chatops import FakeOps

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def ops() -> FakeOps:
    return FakeOps(allow={"upload"})


@pytest.fixture
def deps_far(make_deps, ops):
    """The window opened to a year, so the next clock changes are inside it."""
    return make_deps(ops=ops, schedule_max_days=400)


@pytest.fixture
async def api(make_client, deps_far):
    async with make_client(deps_far) as client:
        yield client


def local_day(days: int) -> date:
    return datetime.now(UTC).astimezone(PARIS).date() + timedelta(days=days)


def next_change(*, gap: bool) -> date:
    """The next day whose 02:30 in Paris is skipped (gap) or happens twice (fold)."""
    for n in range(1, 400):
        day = local_day(n)
        naive = datetime.combine(day, time(2, 30))
        first, second = naive.replace(tzinfo=PARIS), naive.replace(tzinfo=PARIS, fold=1)
        if first.utcoffset() != second.utcoffset():
            skipped = first.astimezone(UTC).astimezone(PARIS).replace(tzinfo=None) != naive
            if skipped == gap:
                return day
    raise AssertionError("Paris changes its clocks twice a year")


async def post_form(api: httpx.AsyncClient, who: str | None = None, **fields: str) -> Any:
    return await api.post(
        "/uploads",
        files={"file": ("clip.mp4", secrets.token_bytes(2048), "video/mp4")},
        data={"title": "Launch", **fields},
        headers=auth(who),
    )


async def schedule_one(api: httpx.AsyncClient, at: datetime, who: str | None = None) -> int:
    """A scheduled upload asked for and approved through the API; its queue number."""
    asked = await post_form(api, who, publish_at=at.isoformat())
    assert asked.status_code == 202, asked.text
    approved = await api.post(
        f"/approvals/{asked.json()['approval_id']}", json={"approve": True}, headers=auth(who)
    )
    assert approved.status_code == 200, approved.text
    queue = (await api.get("/queue", headers=auth(who))).json()["posts"]
    [number] = [p["number"] for p in queue if datetime.fromisoformat(p["publish_at"]) == at]
    return number


async def waiting(deps: Any, me: Identity, action: str) -> list[Any]:
    return await approval_store.list_waiting(
        deps.pool, workspace_id=me.workspace_id, chat_user_id=me.chat_user_id, action=action
    )


async def test_a_scheduled_upload_takes_a_wall_time_and_zone_then_waits_for_approval(
    api, deps_far, new_identity, link, upload_dir
):
    me = await new_identity()
    await link(me, "youtube", "creator")
    await connect(deps_far, me, api)
    day = local_day(3)
    answer = await post_form(api, publish_at=f"{day}T18:00", time_zone="Europe/Paris")
    assert answer.status_code == 202, answer.text
    expected = datetime.combine(day, time(18, 0), PARIS).astimezone(UTC)
    [pending] = await waiting(deps_far, me, "upload")
    assert pending.args["publish_at"] == expected.isoformat()
    summary = answer.json()["summary"]
    assert f"scheduled for {day:%a %d %b %Y} 18:00 Europe/Paris ({expected:%H:%M} UTC" in summary
    assert (await api.get("/queue", headers=auth())).json() == {"scope": "mine", "posts": []}

    decided = await api.post(
        f"/approvals/{answer.json()['approval_id']}", json={"approve": True}, headers=auth()
    )
    assert decided.status_code == 200, decided.text
    queue = (await api.get("/queue", headers=auth())).json()
    [post] = queue["posts"]
    assert datetime.fromisoformat(post["publish_at"]) == expected
    assert post["title"] == "Launch" and post["platform"] == "youtube"
    assert post["status"] == "scheduled" and post["yours"] is True and post["error"] is None
    # No time zone of their own yet: shown in UTC.
    assert post["local_time"] == f"{expected:%a %d %b %Y %H:%M} UTC"


async def test_an_offset_time_needs_no_zone_and_the_chat_rules_refuse_bad_times(
    api, deps_far, new_identity, link, upload_dir
):
    me = await new_identity()
    await link(me, "youtube", "creator")
    await connect(deps_far, me, api)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    offset = at.astimezone(ZoneInfo("Asia/Kolkata")).isoformat()  # +05:30
    answer = await post_form(api, publish_at=offset)
    assert answer.status_code == 202, answer.text
    [pending] = await waiting(deps_far, me, "upload")
    assert pending.args["publish_at"] == at.isoformat()

    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
    gap, fold = next_change(gap=True), next_change(gap=False)
    refusals = [
        ({"publish_at": yesterday}, 400, "is in the past"),
        ({"publish_at": f"{local_day(401)}T12:00:00+01:00"}, 400, "more than 400 days ahead"),
        ({"publish_at": f"{gap}T02:30", "time_zone": "Europe/Paris"}, 400, "does not exist"),
        ({"publish_at": f"{gap}T02:30", "time_zone": "America"}, 400, "is not a time zone"),
        ({"publish_at": "2026-13-40T10:00Z"}, 400, "is not an ISO 8601 time"),
        ({"publish_at": "tomorrow at 18:00"}, 422, "publish_at"),
        ({"time_zone": "Europe/Paris"}, 422, "time_zone is given without publish_at"),
    ]
    for fields, status, said in refusals:
        body = assert_problem(await post_form(api, **fields), status)
        assert said in body["detail"], (fields, body)
    assert len(await waiting(deps_far, me, "upload")) == 1  # none of those asked
    # The refused requests' files are gone; the first one's waits for its approval.
    assert [str(f) for f in upload_dir.iterdir()] == [pending.args["source"]["path"]]

    # A time that happens twice means the first (still summer time, +02:00).
    twice = await post_form(api, publish_at=f"{fold}T02:30", time_zone="Europe/Paris")
    assert twice.status_code == 202, twice.text
    first = datetime.combine(fold, time(2, 30), PARIS).astimezone(UTC)
    assert first.astimezone(PARIS).utcoffset() == timedelta(hours=2)
    assert "00:30 UTC" in twice.json()["summary"]
    args = [p.args["publish_at"] for p in await waiting(deps_far, me, "upload")]
    assert first.isoformat() in args


async def test_json_uploads_declare_and_check_the_time_fields(api, deps_far, new_identity):
    me = await new_identity()
    await connect(deps_far, me, api)
    bad = await api.post(
        "/uploads",
        json={"url": "https://example.com/a.mp4", "publish_at": "in 2h"},
        headers=auth(),
    )
    assert "publish_at" in assert_problem(bad, 422)["detail"]
    doc = (await api.get("/openapi.json")).json()
    body = doc["paths"]["/api/v1/uploads"]["post"]["requestBody"]["content"]
    form = body["multipart/form-data"]["schema"]["properties"]
    assert form["publish_at"]["pattern"] and "time_zone" in form
    assert "publish_at" in body["application/json"]["schema"]["properties"]
    for path in ("/api/v1/queue", "/api/v1/queue/{number}", "/api/v1/best-time"):
        assert path in doc["paths"], path
    assert set(doc["paths"]["/api/v1/queue/{number}"]) == {"delete", "patch"}


async def test_the_queue_is_the_callers_and_the_workspace_scope_is_for_admins(
    make_client, make_deps, ops, new_identity, link
):
    admins: set[int] = set()

    async def is_admin(who: Identity) -> bool:
        return who.chat_user_id in admins

    d = replace(make_deps(ops=ops), is_admin=is_admin)
    me = await new_identity()
    other = await new_identity(workspace=me.workspace_external_id)
    await link(me, "youtube", "creator")
    await link(other, "youtube", "other")
    async with make_client(d) as api:
        await connect(d, me, api)
        await connect(d, other, api, "other")
        at = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
        number = await schedule_one(api, at)

        assert (await api.get("/queue", headers=auth("other"))).json()["posts"] == []
        body = assert_problem(await api.get("/queue?scope=workspace", headers=auth("other")), 403)
        assert "Only workspace admins" in body["detail"]
        assert_problem(await api.get("/queue?scope=everyone", headers=auth("other")), 422)
        # Someone else's post is as unknown as one that never was.
        for answer in (
            await api.delete(f"/queue/{number}", headers=auth("other")),
            await api.patch(
                f"/queue/{number}",
                json={"publish_at": (at + timedelta(hours=1)).isoformat()},
                headers=auth("other"),
            ),
            await api.delete(f"/queue/{number + 1000}", headers=auth()),
        ):
            assert "no scheduled post" in assert_problem(answer, 404)["detail"]
        assert await waiting(d, other, "cancel_scheduled") == []
        assert await waiting(d, other, "reschedule") == []

        admins.add(other.chat_user_id)
        everyone = (await api.get("/queue?scope=workspace", headers=auth("other"))).json()
        assert everyone["scope"] == "workspace"
        assert [(p["number"], p["yours"]) for p in everyone["posts"]] == [(number, False)]
        # Seeing it is not owning it: an admin still cannot cancel someone else's post.
        assert_problem(await api.delete(f"/queue/{number}", headers=auth("other")), 404)


async def test_cancel_and_reschedule_wait_for_the_same_approval_as_chat(
    api, deps_far, new_identity, link
):
    me = await new_identity()
    await link(me, "youtube", "creator")
    await connect(deps_far, me, api)
    at = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    moved, cancelled = await schedule_one(api, at), await schedule_one(api, at + timedelta(1))

    day = local_day(4)
    asked = await api.patch(
        f"/queue/{moved}",
        json={"publish_at": f"{day}T09:30", "time_zone": "Europe/Paris"},
        headers=auth(),
    )
    assert asked.status_code == 202, asked.text
    new = datetime.combine(day, time(9, 30), PARIS).astimezone(UTC)
    assert f"Move scheduled post {moved} (" in asked.json()["summary"]
    [pending] = await waiting(deps_far, me, "reschedule")
    assert pending.args == {"run": moved, "publish_at": new.isoformat()}
    queue = (await api.get("/queue", headers=auth())).json()["posts"]
    assert datetime.fromisoformat(queue[0]["publish_at"]) == at  # nothing moved yet
    said = await api.post(
        f"/approvals/{asked.json()['approval_id']}", json={"approve": True}, headers=auth()
    )
    assert said.json()["message"].startswith(f"Moved post {moved} to ")

    refused = await api.patch(
        f"/queue/{moved}", json={"publish_at": "2020-01-01T00:00:00Z"}, headers=auth()
    )
    assert "in the past" in assert_problem(refused, 400)["detail"]
    assert_problem(await api.patch(f"/queue/{moved}", json={}, headers=auth()), 422)

    gone = await api.delete(f"/queue/{cancelled}", headers=auth())
    assert gone.status_code == 202, gone.text
    assert f"Cancel scheduled post {cancelled} (" in gone.json()["summary"]
    assert cancelled in [
        p["number"] for p in (await api.get("/queue", headers=auth())).json()["posts"]
    ]
    rejected = await api.post(
        f"/approvals/{gone.json()['approval_id']}", json={"approve": False}, headers=auth()
    )
    assert rejected.status_code == 200
    again = await api.delete(f"/queue/{cancelled}", headers=auth())
    said = await api.post(
        f"/approvals/{again.json()['approval_id']}", json={"approve": True}, headers=auth()
    )
    assert said.json()["message"] == f"Cancelled post {cancelled}; nothing will be published."

    queue = (await api.get("/queue", headers=auth())).json()["posts"]
    assert [(p["number"], datetime.fromisoformat(p["publish_at"])) for p in queue] == [(moved, new)]


async def _history(pool: Any, account_id: int, posts: list[tuple[datetime, float]]) -> None:
    """Each post's first-day views as a snapshot 23 hours after it went out."""
    for n, (published, views) in enumerate(posts):
        await metrics.record(
            pool,
            account_id=account_id,
            platform_post_id=f"vid{n}",
            captured_at=published + timedelta(hours=23),
            metrics={
                "views": {"value": views, "source": "views"},
                "published_at": published.isoformat(),
            },
        )


def _local(days_ago: int, hour: int) -> datetime:
    day = local_day(-days_ago)
    return datetime(day.year, day.month, day.day, hour, 15, tzinfo=PARIS).astimezone(UTC)


async def test_best_time_gives_the_slots_from_stored_first_day_views(
    api, deps_far, new_identity, link, pool
):
    me = await new_identity()
    account = await link(me, "youtube", "chan")
    await connect(deps_far, me, api)
    body = assert_problem(await api.get("/best-time?platform=youtube", headers=auth()), 400)
    assert "time zone" in body["detail"]
    await schedule.set_timezone(action_ctx(me, deps_far), "Europe/Paris")

    await _history(pool, account.id, [(_local(7 * w + 1, 18), 900.0) for w in range(3)])
    few = (await api.get("/best-time?platform=youtube", headers=auth())).json()
    assert few == {
        "platform": "youtube",
        "account": account.ref,
        "zone": "Europe/Paris",
        "posts": 3,
        "min_posts": best_time.MIN_POSTS,
        "slots": [],
    }

    more = [(_local(7 * w + 2, 12), 500.0 + 100 * w) for w in range(2)]
    more += [(_local(7 * w + 3, 8), 100.0) for w in range(2)]
    for n, (published, views) in enumerate(more):
        await metrics.record(
            pool,
            account_id=account.id,
            platform_post_id=f"more{n}",
            captured_at=published + timedelta(hours=20),
            metrics={
                "views": {"value": views, "source": "views"},
                "published_at": published.isoformat(),
            },
        )
    found = (await api.get("/best-time?platform=youtube", headers=auth())).json()
    assert found["posts"] == 7
    slots = found["slots"]
    assert sorted((s["hour"], s["mean_views"], s["posts"]) for s in slots) == [
        (8, 100.0, 2),
        (12, 550.0, 2),
        (18, 900.0, 3),
    ]
    starts = [datetime.fromisoformat(s["at"]) for s in slots]
    assert starts == sorted(starts) and all(s > datetime.now(UTC) for s in starts)
    for slot, start in zip(slots, starts, strict=True):
        local = start.astimezone(PARIS)
        assert (local.hour, local.minute, f"{local:%A}") == (slot["hour"], 0, slot["weekday"])
        assert slot["local_time"].startswith(f"{local:%a %d %b %Y %H:%M} Europe/Paris")
    assert_problem(await api.get("/best-time?platform=myspace", headers=auth()), 400)


def test_every_field_of_a_json_upload_reaches_the_action() -> None:
    # The JSON route passes the body's fields on by name (its link checks need DNS, so
    # a scheduled JSON upload is not run here): each must be a parameter of the action.
    accepted = set(inspect.signature(uploads.request_upload_from_url).parameters)
    assert set(models.UploadByUrl.model_fields) <= accepted
    assert {"publish_at", "time_zone"} <= set(models.UploadByUrl.model_fields)
