"""Slack with the real conversation core: `queue` answers privately in Block Kit with
"Cancel" and "Reschedule" per post; a click runs the button's command as the clicker,
so another person's click is refused and the owner's goes through approval."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from agent.layout import Layout, Section
from agent.post_actions import post_actions
from bot.core.service import ChatOpsService
from bot.slack.blocks import RUN_ACTION_PREFIX, problems
from storage import job_runs, user_settings
from tests.bot.scheduled import scheduled_post
from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET, TEAM, SlackHarness, _harness
from tests.fakes.chatops import FakeOps
from tests.fakes.slack import FakeSlack, interaction_body, sign


class Core(ChatOpsService):
    unexpected: list[str] = []


@pytest.fixture
async def wired(
    make_settings: Any, fake_slack: FakeSlack, make_deps: Any, redis: Any
) -> AsyncIterator[SlackHarness]:
    core = Core(deps=make_deps(ops=FakeOps()))
    async for harness in _harness(make_settings, fake_slack, core, slack_bot_token=BOT_TOKEN):
        yield harness


def _blocks(call: Any) -> list[dict[str, Any]]:
    raw = call.args["blocks"]
    return json.loads(raw) if isinstance(raw, str) else list(raw)


async def _press(slack: SlackHarness, button: dict[str, Any], *, user: str) -> None:
    """A click on a button of a private (ephemeral) answer, as Slack posts it."""
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": user, "team_id": TEAM},
        "api_app_id": "A1",
        "container": {"type": "message", "message_ts": "1.0", "channel_id": "C1"},
        "channel": {"id": "C1"},
        "response_url": f"{slack.fake.base_url}/response/run",
        "trigger_id": "t.9",
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": "b1",
                "value": button["value"],
                "action_ts": str(time.time()),
            }
        ],
    }
    body = interaction_body(payload)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, body)}
    response = await slack.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 200
    await slack.settle()


async def test_queue_buttons_run_their_command_as_the_clicker(
    wired: SlackHarness, new_identity: Any, link: Any, pool: asyncpg.Pool
) -> None:
    alice = await new_identity(workspace=TEAM, user="UALICE")
    await new_identity(workspace=TEAM, user="UBOB")
    await user_settings.set_time_zone(pool, chat_user_id=alice.chat_user_id, zone="Europe/Paris")
    acct = await link(alice, "youtube", "chan")
    at = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    run_id = await scheduled_post(pool, alice, acct, title="Launch <!channel>", at=at)

    await wired.command("queue")
    await wired.settle()
    (eph,) = wired.fake.calls_of("chat.postEphemeral")
    assert eph.args["user"] == "UALICE"
    blocks = _blocks(eph)
    assert problems({"text": eph.args["text"], "blocks": blocks}) == []
    row = json.dumps(blocks)
    assert f"{run_id}: " in row and "YouTube" in row and "@chan" in row
    assert "&lt;!channel&gt;" in row  # a title is data, never a ping
    paris = at.astimezone(ZoneInfo("Europe/Paris"))  # the requester's zone, not UTC
    assert f"{paris:%a %d %b %Y %H:%M} Europe/Paris" in row
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    buttons = {e["text"]["text"]: e for e in actions["elements"]}
    assert buttons["Cancel"]["value"] == f"cancel {run_id}"
    assert buttons["Cancel"]["action_id"].startswith(RUN_ACTION_PREFIX)
    assert buttons["Reschedule"]["value"] == f"reschedule {run_id}"
    # The shell's plain text names the commands the buttons stand for.
    assert f"Cancel: `cancel {run_id}`" in eph.args["text"]
    assert f"`reschedule {run_id} <when>`" in eph.args["text"]

    # Bob clicks Alice's button (the message reached him somehow): refused by the core.
    await _press(wired, buttons["Cancel"], user="UBOB")
    refusal = wired.fake.calls_of("chat.postEphemeral")[-1]
    assert refusal.args["user"] == "UBOB"
    assert refusal.args["text"] == f"You have no job {run_id}."  # as if he typed it
    assert wired.fake.calls_of("chat.postMessage") == []  # no approval asked

    # Alice's click goes through approval, like typing `cancel N`: nothing cancelled yet.
    await _press(wired, buttons["Cancel"], user="UALICE")
    (approval,) = wired.fake.calls_of("chat.postMessage")
    assert approval.args["channel"] == "C1"
    assert f"Cancel scheduled post {run_id}" in approval.args["text"]
    ids = [
        e["action_id"] for b in _blocks(approval) if b["type"] == "actions" for e in b["elements"]
    ]
    assert any(i.startswith("socialops:approve:") for i in ids)
    run = await job_runs.get(pool, run_id)
    assert run is not None and run.state == "queued"

    # "Reschedule" answers privately with the command to complete, prefilled.
    await _press(wired, buttons["Reschedule"], user="UALICE")
    prefill = wired.fake.calls_of("chat.postEphemeral")[-1]
    assert prefill.args["user"] == "UALICE"
    assert f"`reschedule {run_id} <when>`" in prefill.args["text"]
    assert f"`reschedule {run_id} in 2h`" in prefill.args["text"]
    assert len(wired.fake.calls_of("chat.postMessage")) == 1  # no approval for a prompt


async def test_digest_approval_names_the_channel_as_a_mention(
    wired: SlackHarness, new_identity: Any
) -> None:
    await new_identity(workspace=TEAM, user="UALICE")
    await wired.command("digest on at 08:30")
    await wired.settle()
    (approval,) = wired.fake.calls_of("chat.postMessage")
    # Alice's Slack profile says Europe/Paris: `digest on` with no zone takes hers.
    assert "Post a daily digest in <#C1> at 08:30 Europe/Paris" in approval.args["text"]
    section = _blocks(approval)[0]
    assert "<#C1>" in section["text"]["text"] and "#C1 " not in section["text"]["text"]


async def test_failed_post_note_has_a_retry_button_that_asks_approval(
    wired: SlackHarness, new_identity: Any, link: Any, pool: asyncpg.Pool
) -> None:
    alice = await new_identity(workspace=TEAM, user="UALICE")
    acct = await link(alice, "youtube", "chan")
    at = datetime.now(UTC) + timedelta(hours=1)
    broke = await scheduled_post(pool, alice, acct, title="Broke", at=at, failed="quota")
    note = Layout(
        title=f"Scheduled post {broke} failed",
        sections=(Section("", body="quota", actions=post_actions(broke, failed=True)),),
    )
    reply_to = {"frontend": "slack", "team": TEAM, "channel": "C1", "user": "UALICE"}
    await wired.adapter.notify(reply_to, "Your scheduled upload 'Broke' failed: quota", layout=note)
    (eph,) = wired.fake.calls_of("chat.postEphemeral")
    assert eph.args["user"] == "UALICE"
    blocks = _blocks(eph)
    assert problems({"text": eph.args["text"], "blocks": blocks}) == []
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    retry = actions["elements"][0]
    assert retry["text"]["text"] == "Retry" and retry["value"] == f"reschedule {broke} in 1m"

    await _press(wired, retry, user="UBOB")  # not his post: refused, nothing asked
    assert wired.fake.calls_of("chat.postEphemeral")[-1].args["user"] == "UBOB"
    assert wired.fake.calls_of("chat.postMessage") == []

    await _press(wired, retry, user="UALICE")
    (approval,) = wired.fake.calls_of("chat.postMessage")
    assert f"Move scheduled post {broke}" in approval.args["text"]
    run = await job_runs.get(pool, broke)
    assert run is not None and run.state == "failed"  # nothing until approved
