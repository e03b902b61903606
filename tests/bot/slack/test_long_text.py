"""A long answer reaches Slack whole, as several messages split where it reads well."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.messages import Reply
from bot.core.text import SLACK_TEXT_LIMIT
from bot.slack.sink import SlackReplySink
from tests.bot.slack.conftest import BOT_TOKEN
from tests.fakes.slack import FakeSlack


async def test_a_5600_character_answer_arrives_whole_in_order(fake_slack: FakeSlack) -> None:
    paragraphs = [f"Paragraph {i}:" + " insight" * 60 for i in range(12)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 5600
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_base)
    sink = SlackReplySink(client=client, channel="C1", user="U1", thread_ts="1.0")
    await sink.send(Reply(text))
    posted = [c.args["text"] for c in fake_slack.calls_of("chat.postMessage")]
    assert len(posted) == 2 and all(len(p) <= SLACK_TEXT_LIMIT for p in posted)
    assert "\n\n".join(posted) == text  # nothing lost, split at a paragraph
    assert all(c.args.get("thread_ts") == "1.0" for c in fake_slack.calls_of("chat.postMessage"))
