"""`socialops digest-preview`: a sample digest rendered to files a person can look at.

Writes the chart (PNG), the Slack payload (Block Kit blocks and fallback text) and the
Discord payload (embeds) into a directory, from fixed sample figures: two accounts over
14 days with one day missing, three top posts, a platform that is down and an account
that needs relinking, so every part of the layout shows. No network, no database.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from agent.digest_content import (
    AccountSection,
    Change,
    ChartLine,
    Digest,
    Relink,
    TopPost,
    number,
)
from bot.digest_layout import CHART_NAME, discord_message, slack_blocks
from integrations.base import Figure, Metric

SAMPLE_DAY = date(2026, 11, 24)
SAMPLE_AS_OF = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _series(
    base: int, step: int, wobble: tuple[int, ...], skip: int | None = None
) -> list[tuple[date, float]]:
    first = SAMPLE_DAY - timedelta(days=13)
    return [
        (first + timedelta(days=i), float(base + step * i + wobble[i % len(wobble)]))
        for i in range(14)
        if i != skip
    ]


def sample_digest() -> Digest:
    """A digest with every part filled in (the preview's and the README's picture),
    on the first registered platforms."""
    from integrations.registry import PLUGINS

    video, photo, short, other = (p.display_name for p in PLUGINS[:4])
    yt = _series(980, 21, (0, 60, -40, 15, 90, -20, 35), skip=12)
    ig = _series(420, 9, (0, -25, 30, 10, -15, 40, 5))
    first = SAMPLE_DAY - timedelta(days=13)
    sections = [
        AccountSection(
            "a1",
            video,
            "makerlab",
            SAMPLE_DAY,
            [
                Change(Metric.VIEWS, yt[-1][1], yt[-2][1]),
                Change(Metric.WATCH_TIME_MINUTES, 1004, 1120),
                Change(Metric.AVG_VIEW_DURATION_SECONDS, 16, 15),
                Change(Metric.LIKES, 86, 71),
                Change(Metric.FOLLOWERS_GAINED, 12, 12),
            ],
            yt[-2][0],
        ),
        AccountSection(
            "a2",
            photo,
            "makerlab.studio",
            SAMPLE_DAY,
            [
                Change(Metric.VIEWS, ig[-1][1], ig[-2][1]),
                Change(Metric.REACH, 512, 468),
                Change(Metric.LIKES, 41, 47),
                Change(Metric.ENGAGEMENT_RATE, 0.0421, 0.0398),
            ],
            ig[-2][0],
        ),
    ]

    def post(platform: str, handle: str, slug: str, title: str, views: int, thumb: bool) -> TopPost:
        return TopPost(
            platform,
            handle,
            slug,
            title,
            f"https://example.com/p/{slug}",
            f"https://media.example.com/thumbs/{slug}.jpg" if thumb else None,
            views,
            {Metric.VIEWS: Figure(views, "views")},
        )

    return Digest(
        title="Daily digest, 2026-11-25",
        as_of=SAMPLE_AS_OF,
        accounts=sections,
        top_posts=[
            post(video, "makerlab", "desk-lamp", "Building a desk lamp from scrap", 4210, True),
            post(photo, "makerlab.studio", "lamp-teaser", "Lamp teaser", 1880, False),
            post(video, "makerlab", "five-clamps", "Five clamps you need", 1312, True),
        ],
        chart=[
            ChartLine(sections[0].label, yt),
            ChartLine(sections[1].label, ig),
        ],
        chart_days=(first, SAMPLE_DAY),
        unavailable=[(short, f"{short} did not answer in time")],
        relinks=[
            Relink(
                "U0SAMPLE",
                other,
                "makerlab",
                f"Your {other} account @makerlab needs to be linked again.",
            )
        ],
        insights=[
            f"{video} views held at {number(yt[-1][1])} while watch time slipped to 1,004 min.",
            f"{photo} views dipped to {number(ig[-1][1])}, yet engagement climbed to 4.21 %.",
            "Building a desk lamp from scrap led the day with 4,210 views.",
        ],
    )


def write_preview(directory: Path, digest: Digest | None = None) -> list[Path]:
    """The chart, the Slack payload and the Discord payload, as files in `directory`."""
    from bot.digest_chart import render_png

    digest = digest or sample_digest()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    chart = digest.chart and digest.chart_days is not None
    if digest.chart and digest.chart_days is not None:
        path = directory / CHART_NAME
        path.write_bytes(render_png(digest.chart, digest.chart_days))
        written.append(path)
    slack = {"text": digest.text(), "blocks": slack_blocks(digest, chart_attached=bool(chart))}
    discord = discord_message(digest, chart_attached=bool(chart))
    for name, payload in (("slack-blocks.json", slack), ("discord-embeds.json", discord)):
        path = directory / name
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
