"""Slack with the real conversation core: slash answers are ephemeral Block Kit, `share`
and the "Share to channel" button post the same answer publicly, saying who shared it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from agent.ports import MetricsReport
from bot.core.service import ChatOpsService
from bot.slack.blocks import SHARE_ACTION, problems
from integrations.base import AccountMetrics, Figure, Metric, PostMetrics
from storage.identity import Identity
from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET, TEAM, SlackHarness, _harness
from tests.fakes.chatops import FakeOps
from tests.fakes.slack import FakeSlack, interaction_body, sign

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


class Core(ChatOpsService):
    """The real core, with the harness's "nothing unexpected" hook."""

    unexpected: list[str] = []


def _report(ref: str) -> MetricsReport:
    top = PostMetrics(
        "youtube",
        "vid1",
        NOW,
        {Metric.VIEWS: Figure(900, "views")},
        title="Launch day",
        url="https://www.youtube.com/watch?v=vid1",
        thumbnail_url="https://i.ytimg.example/vi/vid1/mqdefault.jpg",
    )
    acct = AccountMetrics(
        "youtube",
        "UC1",
        date(2026, 11, 18),
        date(2026, 11, 24),
        NOW,
        {
            Metric.VIEWS: Figure(1204, "views"),
            Metric.WATCH_TIME_MINUTES: Figure(1004, "estimatedMinutesWatched"),
        },
        top_posts=[top],
    )
    return MetricsReport(as_of=NOW, accounts=[(ref, acct)])


@pytest.fixture
async def ops() -> FakeOps:
    return FakeOps(allow={"metrics"})


@pytest.fixture
async def wired(
    make_settings: Any, fake_slack: FakeSlack, make_deps: Any, ops: FakeOps, redis: Any
) -> AsyncIterator[SlackHarness]:
    core = Core(deps=make_deps(ops=ops))
    async for harness in _harness(make_settings, fake_slack, core, slack_bot_token=BOT_TOKEN):
        yield harness


async def _alice(new_identity: Any, link: Any, ops: FakeOps) -> Identity:
    ident: Identity = await new_identity(workspace=TEAM, user="UALICE")
    acct = await link(ident, "youtube", "chan")
    ops.report = _report(acct.ref)
    return ident


async def _click_share(slack: SlackHarness, value: str, user: str = "UALICE") -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "acme"},
        "user": {"id": user, "team_id": TEAM},
        "api_app_id": "A1",
        "container": {
            "type": "message",
            "message_ts": "1.0",
            "channel_id": "C1",
            "is_ephemeral": True,
        },
        "channel": {"id": "C1"},
        "response_url": f"{slack.fake.base_url}/response/share",
        "trigger_id": "t.3",
        "actions": [
            {
                "type": "button",
                "action_id": SHARE_ACTION,
                "block_id": "socialops:share",
                "value": value,
                "action_ts": str(time.time()),
            }
        ],
    }
    body = interaction_body(payload)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, body)}
    response = await slack.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 200
    await slack.settle()


async def test_metrics_answer_privately_then_shared_with_the_button(
    wired: SlackHarness, new_identity: Any, link: Any, ops: FakeOps
) -> None:
    await _alice(new_identity, link, ops)
    await wired.command("metrics youtube 7d")
    await wired.settle()

    assert wired.fake.calls_of("chat.postMessage") == []
    (eph,) = wired.fake.calls_of("chat.postEphemeral")
    assert eph.args["user"] == "UALICE" and eph.args["channel"] == "C1"
    blocks = (
        json.loads(eph.args["blocks"])
        if isinstance(eph.args["blocks"], str)
        else eph.args["blocks"]
    )
    assert problems({"text": eph.args["text"], "blocks": blocks}) == []
    kinds = [b["type"] for b in blocks]
    assert kinds[0] == "header" and "context" in kinds and kinds[-1] == "actions"
    figures = next(b for b in blocks if b.get("fields"))
    assert {"type": "mrkdwn", "text": "*Watch time*\n1,004 min"} in figures["fields"]
    top = next(b for b in blocks if b.get("accessory"))
    assert top["accessory"]["image_url"].endswith("mqdefault.jpg")
    assert "<https://www.youtube.com/watch?v=vid1|" in top["text"]["text"]
    assert "Views 1,204" in eph.args["text"]  # the plain fallback says it all too
    button = blocks[-1]["elements"][0]
    assert button["action_id"] == SHARE_ACTION

    await _click_share(wired, button["value"])

    (post,) = wired.fake.calls_of("chat.postMessage")
    assert post.args["channel"] == "C1"
    shared = (
        json.loads(post.args["blocks"])
        if isinstance(post.args["blocks"], str)
        else post.args["blocks"]
    )
    assert shared[1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "Shared by <@UALICE>"}],
    }
    assert [b for b in shared if b["type"] == "actions"] == []  # no button on the public copy
    assert shared[2:] == blocks[1:-1]  # the same answer
    # The private copy, its button spent, is removed through the click's response_url.
    assert {"key": "share", "delete_original": True} in wired.fake.webhook_posts


async def test_accounts_and_errors_are_ephemeral_and_share_word_posts(
    wired: SlackHarness, new_identity: Any, link: Any, ops: FakeOps
) -> None:
    await _alice(new_identity, link, ops)
    await wired.command("accounts")
    await wired.command("metrics instagram 7d")  # no Instagram account: a per-user error
    await wired.command("metrics youtube 7d share")
    await wired.settle()

    ephs = wired.fake.calls_of("chat.postEphemeral")
    assert len(ephs) == 2
    assert all(e.args["user"] == "UALICE" for e in ephs)
    texts = sorted(e.args["text"] for e in ephs)
    assert any("@chan" in t for t in texts)
    assert any("no linked Instagram account" in t for t in texts)
    (post,) = wired.fake.calls_of("chat.postMessage")
    assert "Views 1,204" in post.args["text"] and "Shared by <@UALICE>" in str(post.args["blocks"])


async def test_someone_else_cannot_share_an_answer(
    wired: SlackHarness, new_identity: Any, link: Any, ops: FakeOps
) -> None:
    await _alice(new_identity, link, ops)
    await wired.command("metrics youtube")
    await wired.settle()
    (eph,) = wired.fake.calls_of("chat.postEphemeral")
    blocks = eph.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    await _click_share(wired, blocks[-1]["elements"][0]["value"], user="UBOB")
    assert wired.fake.calls_of("chat.postMessage") == []
    told = wired.fake.calls_of("chat.postEphemeral")[-1]
    assert told.args["user"] == "UBOB" and "can no longer be shared" in told.args["text"]
    assert wired.fake.webhook_posts == []  # nothing deleted either
