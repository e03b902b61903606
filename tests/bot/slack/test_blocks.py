"""Metrics and caption drafts as Block Kit, within Slack's limits, with a plain-text fallback."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from bot.slack.blocks import account_metrics_reply, caption_reply, format_figure, post_metrics_reply
from bot.slack.convert import MAX_BLOCKS, SECTION_TEXT_MAX
from integrations.base import AccountMetrics, Figure, Metric, PostMetrics

AS_OF = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def _fig(value: float) -> Figure:
    return Figure(value, "test")


def test_figures_read_as_people_expect() -> None:
    assert format_figure(Metric.VIEWS, _fig(1234567)) == "1,234,567"
    assert format_figure(Metric.ENGAGEMENT_RATE, _fig(0.0423)) == "4.2%"
    assert format_figure(Metric.WATCH_TIME_MINUTES, _fig(65)) == "1h 05m"
    assert format_figure(Metric.AVG_VIEW_DURATION_SECONDS, _fig(187)) == "3:07"


def test_post_metrics_have_fields_an_as_of_context_and_a_fallback() -> None:
    metrics = PostMetrics(
        platform="youtube",
        post_id="vid1",
        as_of=AS_OF,
        title="Launch <!channel> day",
        url="https://youtu.be/vid1",
        figures={
            Metric.VIEWS: _fig(1500),
            Metric.LIKES: _fig(120),
            Metric.ENGAGEMENT_RATE: _fig(0.09),
        },
    )
    reply = post_metrics_reply(metrics)

    assert reply.blocks is not None
    kinds = [b["type"] for b in reply.blocks]
    assert kinds == ["header", "section", "context"]
    fields = [f["text"] for f in reply.blocks[1]["fields"]]
    assert fields == ["*Views*\n1,500", "*Likes*\n120", "*Engagement rate*\n9.0%"]
    assert "as of 2026-11-25 09:30 UTC" in json.dumps(reply.blocks[2])
    assert "Views 1,500" in reply.text and "as of 2026-11-25 09:30 UTC" in reply.text
    assert "<!channel>" not in json.dumps(reply.blocks)


def test_a_large_account_report_stays_within_limits() -> None:
    top = [
        PostMetrics(
            platform="instagram",
            post_id=f"p{i}",
            as_of=AS_OF,
            title="x" * 400,
            figures={Metric.VIEWS: _fig(i * 10)},
        )
        for i in range(30)
    ]
    metrics = AccountMetrics(
        platform="instagram",
        account_id="acct",
        start=date(2026, 11, 1),
        end=date(2026, 11, 24),
        as_of=AS_OF,
        figures={m: _fig(1) for m in Metric},
        top_posts=top,
    )
    reply = account_metrics_reply(metrics)

    assert reply.blocks is not None and len(reply.blocks) <= MAX_BLOCKS
    for block in reply.blocks:
        if block["type"] == "section":
            assert len(block.get("fields", [])) <= 10
            assert len(block.get("text", {}).get("text", "")) <= SECTION_TEXT_MAX
    assert len([f for b in reply.blocks for f in b.get("fields", [])]) == len(Metric)
    assert reply.blocks[-1]["type"] == "context" and "as of" in json.dumps(reply.blocks[-1])
    assert reply.text.startswith("Instagram, Nov 01 to Nov 24, 2026: ")


def test_a_long_caption_is_split_not_cut() -> None:
    caption = ("Behind the scenes of our launch. " * 250)[:7000]
    reply = caption_reply(caption, platform="youtube", title="Launch")

    assert reply.blocks is not None
    parts = [b["text"]["text"] for b in reply.blocks if b["type"] == "section"]
    assert len(parts) == 3 and "".join(parts) == caption
    assert reply.text.endswith(caption)
    assert reply.blocks[0]["text"]["text"] == "Caption draft for YouTube: Launch"
