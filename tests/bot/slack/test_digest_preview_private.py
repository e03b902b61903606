"""`digest preview` in Slack: the digest's own Block Kit, privately (ephemeral), within
Slack's limits, and without the chart (an ephemeral message carries no file)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.messages import IncomingMessage, Reply, ReplySink
from bot.digest_preview import sample_digest
from bot.slack.blocks import problems
from tests.bot.slack.conftest import BOT_TOKEN, SlackHarness, _harness
from tests.fakes.slack import FakeSlack

NOTE = "Preview, only for you: the real digest also carries the views chart."


class PreviewCore:
    """Answers every message with a digest preview, privately, as the real core does."""

    unexpected: list[str] = []

    async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
        digest = dataclasses.replace(sample_digest(), notice=NOTE, chart=[], chart_days=None)
        await sink.send_private(Reply(digest.text(), digest=digest))


@pytest.fixture
async def wired(
    make_settings: Any, fake_slack: FakeSlack, redis: Any
) -> AsyncIterator[SlackHarness]:
    core: Any = PreviewCore()
    async for harness in _harness(make_settings, fake_slack, core, slack_bot_token=BOT_TOKEN):
        yield harness


async def test_preview_is_the_digests_blocks_privately(wired: SlackHarness) -> None:
    await wired.command("digest preview")
    await wired.settle()

    assert wired.fake.calls_of("chat.postMessage") == []
    assert wired.fake.calls_of("files.getUploadURLExternal") == []  # no chart upload
    (eph,) = wired.fake.calls_of("chat.postEphemeral")
    assert eph.args["user"] == "UALICE" and eph.args["channel"] == "C1"
    raw = eph.args["blocks"]
    blocks = json.loads(raw) if isinstance(raw, str) else raw
    assert problems({"text": eph.args["text"], "blocks": blocks}) == []
    assert blocks[0]["type"] == "header"
    shown = json.dumps(blocks)
    assert NOTE in shown and "*Top posts*" in shown and "makerlab" in shown
    assert not any("accessory" in b for b in blocks)  # no thumbnail to lose the preview over
    assert "socialops:share" not in shown  # a preview is for the asker; nothing to share
    assert "Views" in eph.args["text"]  # the plain fallback says it all too
