"""The digest as people see it: a deterministic chart, Block Kit within Slack's limits,
the chart uploaded with the message through the fake Slack, and the preview files."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from agent.digest_content import AccountSection, Change, ChartLine
from bot.digest_chart import PALETTE, chart_figure, render_png
from bot.digest_layout import CHART_NAME, slack_blocks
from bot.digest_preview import sample_digest, write_preview
from bot.slack.digest import post_digest
from integrations.base import Metric
from tests.bot.slack.conftest import BOT_TOKEN
from tests.fakes.slack import FakeSlack

FIRST = date(2026, 11, 11)
DAYS = (FIRST, FIRST + timedelta(days=13))
LINES = [
    ChartLine("YouTube @a", [(FIRST + timedelta(days=i), 100.0 + i) for i in range(14) if i != 4]),
    ChartLine("Instagram @b", [(FIRST + timedelta(days=i), 50.0 * i) for i in range(14)]),
]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chart_plots_each_account_with_a_gap_for_a_missing_day() -> None:
    ax = chart_figure(LINES, DAYS).axes[0]
    youtube, instagram = ax.get_lines()
    assert youtube.get_label() == "YouTube @a" and instagram.get_label() == "Instagram @b"
    ys = list(youtube.get_ydata())
    assert len(ys) == 14 and math.isnan(ys[4])  # a gap, never a made-up value
    assert [y for i, y in enumerate(ys) if i != 4] == [100.0 + i for i in range(14) if i != 4]
    assert list(instagram.get_ydata()) == [50.0 * i for i in range(14)]
    assert (youtube.get_color(), instagram.get_color()) == PALETTE[:2]


def test_chart_is_the_same_png_for_the_same_data() -> None:
    first, second = render_png(LINES, DAYS), render_png(LINES, DAYS)
    assert first == second
    assert _png_size(first) == (800, 400)
    assert b"Matplotlib" not in first  # no version or time in the metadata
    other = render_png([replace(LINES[0], points=LINES[0].points[:-1]), LINES[1]], DAYS)
    assert other != first


async def test_deliveries_render_the_chart_off_the_event_loop(monkeypatch) -> None:
    """A chart is ~70 ms of CPU: rendered on the loop it would stall every other delivery
    (and time out the limiter's calls). Several at once run on the renderer's one thread,
    never overlapping (matplotlib's rc settings are global), and give the same bytes."""
    import asyncio
    import threading

    from bot import digest_chart

    loop_thread = threading.get_ident()
    seen: list[int] = []
    running = 0

    def render(lines: list[ChartLine], days: tuple[date, date]) -> bytes:
        nonlocal running
        running += 1
        try:
            assert running == 1  # one at a time
            seen.append(threading.get_ident())
            return render_png(lines, days)
        finally:
            running -= 1

    monkeypatch.setattr(digest_chart, "render_png", render)
    pngs = await asyncio.gather(*(digest_chart.chart_png(LINES, DAYS) for _ in range(3)))
    assert set(pngs) == {render_png(LINES, DAYS)}
    assert len(seen) == 3 and loop_thread not in seen


def test_slack_blocks_stay_within_limits_for_many_accounts() -> None:
    day = date(2026, 11, 24)
    metrics = list(Metric)
    accounts = [
        AccountSection(
            f"a{i}", "YouTube", "x" * 200, day, [Change(m, 1.0, 2.0) for m in metrics], None
        )
        for i in range(80)
    ]
    digest = replace(sample_digest(), accounts=accounts, title="T" * 400)
    blocks = slack_blocks(digest, chart_attached=True)
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks:
        assert len(block.get("fields", [])) <= 10
        texts = [block.get("text", {}).get("text", "")]
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e.get("text", "") for e in block.get("elements", [])]
        assert all(len(t) <= 3000 for t in texts)
    assert any("more accounts" in e.get("text", "") for b in blocks for e in b.get("elements", []))
    assert blocks[-1]["type"] == "context" and "As of" in blocks[-1]["elements"][0]["text"]


async def test_digest_posts_blocks_with_the_chart_uploaded_through_files_upload_v2(
    fake_slack: FakeSlack,
) -> None:
    digest = sample_digest()
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_base)
    ref = await post_digest(client, "C42", digest)

    [(channel, files, blocks)] = fake_slack.shared_uploads
    assert channel == "C42" and ref.startswith("C42:1700000000.")
    [file] = files
    assert file["name"] == CHART_NAME
    assert fake_slack.files[file["id"]][1] == render_png(digest.chart, digest.chart_days)
    assert blocks is not None and blocks[0]["type"] == "header"
    sections = [b for b in blocks if b.get("fields")]
    assert sections[0]["fields"][0]["text"].startswith("*Views*\n1,288")
    thumbs = [b["accessory"]["image_url"] for b in blocks if "accessory" in b]
    assert thumbs == [p.thumbnail_url for p in digest.top_posts if p.thumbnail_url]
    # The chart and the blocks are one message: nothing else was posted in the channel.
    assert fake_slack.calls_of("chat.postMessage") == []
    # The owner of the account to relink is told privately, in the channel.
    [prompt] = fake_slack.calls_of("chat.postEphemeral")
    assert prompt.args["user"] == "U0SAMPLE" and "linked again" in prompt.args["text"]


async def test_without_files_write_the_digest_posts_without_the_chart(
    fake_slack: FakeSlack,
) -> None:
    fake_slack.errors["files.getUploadURLExternal"] = "missing_scope"
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_base)
    ref = await post_digest(client, "C42", sample_digest())
    [posted] = fake_slack.calls_of("chat.postMessage")
    blocks = posted.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    assert blocks[0]["type"] == "header" and "chart" not in blocks[-1]["elements"][0]["text"]
    assert posted.args["text"].startswith("Daily digest, 2026-11-25")
    assert ref.startswith("C42:") and fake_slack.shared_uploads == []


def test_preview_writes_the_chart_and_both_payloads(tmp_path: Path) -> None:
    written = write_preview(tmp_path / "preview")
    names = sorted(p.name for p in written)
    assert names == sorted([CHART_NAME, "slack-blocks.json", "discord-embeds.json"])
    out = tmp_path / "preview"
    assert _png_size((out / CHART_NAME).read_bytes()) == (800, 400)
    slack = json.loads((out / "slack-blocks.json").read_text(encoding="utf-8"))
    assert slack["blocks"][0]["type"] == "header" and slack["text"].startswith("Daily digest")
    discord = json.loads((out / "discord-embeds.json").read_text(encoding="utf-8"))
    assert discord["embeds"][0]["image"]["url"] == f"attachment://{CHART_NAME}"
    assert len(discord["embeds"]) == 4  # the digest and its three top posts


def test_discord_embeds_stay_within_limits_for_long_accounts() -> None:
    from bot.digest_layout import discord_message

    day = date(2026, 11, 24)
    accounts = [
        AccountSection(
            f"a{i}", "Video", "h" * 240, day, [Change(m, 1.0, 2.0) for m in Metric], None
        )
        for i in range(40)
    ]
    message = discord_message(replace(sample_digest(), accounts=accounts), chart_attached=True)
    embeds = message["embeds"]
    assert 1 <= len(embeds) <= 10
    total = 0
    for embed in embeds:
        assert len(embed.get("fields", [])) <= 25
        assert all(
            len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed.get("fields", [])
        )
        total += len(embed.get("title", "")) + len(embed.get("description", ""))
        total += len(embed.get("footer", {}).get("text", ""))
        total += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    assert total <= 6000
    # The heads-up (an outage, a relink) is kept while accounts are shed.
    assert embeds[0]["fields"][-1]["name"] == "Heads-up"
    assert embeds[0]["fields"][-2]["name"] == "More accounts"
    shown = len(embeds[0]["fields"]) - 2
    assert embeds[0]["fields"][-2]["value"] == f"…and {40 - shown}"


async def test_a_thumbnail_slack_cannot_fetch_costs_the_thumbnails_not_the_digest(
    fake_slack: FakeSlack,
) -> None:
    digest = sample_digest()
    fake_slack.unreachable_images.add(str(digest.top_posts[0].thumbnail_url))
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_base)
    ref = await post_digest(client, "C42", digest)
    # The first upload's blocks were refused; the second, without thumbnails, went out
    # with the chart. Nothing went through chat.postMessage.
    assert len(fake_slack.calls_of("files.completeUploadExternal")) == 2
    [(channel, [file], blocks)] = fake_slack.shared_uploads
    assert channel == "C42" and file["name"] == CHART_NAME and ref.startswith("C42:")
    assert blocks is not None and not any("accessory" in b for b in blocks)
    assert any("Building a desk lamp" in b.get("text", {}).get("text", "") for b in blocks)
    assert fake_slack.calls_of("chat.postMessage") == []

    # Without files:write, the message path drops the thumbnails the same way.
    fake_slack.errors["files.getUploadURLExternal"] = "missing_scope"
    await post_digest(client, "C43", digest)
    refused, posted = fake_slack.calls_of("chat.postMessage")
    shown = posted.args["blocks"]
    shown = json.loads(shown) if isinstance(shown, str) else shown
    assert refused.args["channel"] == posted.args["channel"] == "C43"
    assert not any("accessory" in b for b in shown)
