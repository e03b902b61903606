"""Block Kit renderings of metrics and caption drafts, each with its plain-text fallback.

Pure functions from the normalized metrics model to a `Reply` whose `blocks`
are Slack Block Kit (header, section fields, context with the "as of" time) and
whose `text` says the same in plain words, for notifications, screen readers
and clients without blocks. Everything passes through `clamp_blocks`, so
Slack's limits hold whatever the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.messages import Reply
from bot.slack.convert import SECTION_TEXT_MAX, clamp_blocks, context_block
from integrations.base import AccountMetrics, Figure, Metric, PostMetrics

_PLATFORM = {"youtube": "YouTube", "instagram": "Instagram", "tiktok": "TikTok", "x": "X"}
_LABEL = {
    Metric.VIEWS: "Views",
    Metric.LIKES: "Likes",
    Metric.COMMENTS: "Comments",
    Metric.SHARES: "Shares",
    Metric.SAVES: "Saves",
    Metric.WATCH_TIME_MINUTES: "Watch time",
    Metric.AVG_VIEW_DURATION_SECONDS: "Avg. view duration",
    Metric.FOLLOWERS_GAINED: "Followers gained",
    Metric.FOLLOWERS_LOST: "Followers lost",
    Metric.REACH: "Reach",
    Metric.ENGAGEMENT_RATE: "Engagement rate",
}
_MAX_TOP_POSTS = 10


def format_figure(metric: Metric, figure: Figure) -> str:
    """A figure as people read it: 12,345 · 4.2% · 1h 05m · 3:07."""
    value = figure.value
    if metric is Metric.ENGAGEMENT_RATE:
        return f"{value * 100:.1f}%"
    if metric is Metric.WATCH_TIME_MINUTES:
        hours, minutes = divmod(round(value), 60)
        return f"{hours:,}h {minutes:02d}m" if hours else f"{minutes}m"
    if metric is Metric.AVG_VIEW_DURATION_SECONDS:
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes}:{seconds:02d}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _as_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def _fields(figures: dict[Metric, Figure]) -> list[tuple[str, str]]:
    # A fixed order, so the same report always reads the same way.
    return [(_LABEL[m], format_figure(m, figures[m])) for m in _LABEL if m in figures]


def _field_blocks(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    blocks = []
    for start in range(0, len(pairs), 10):  # at most 10 fields per section
        chunk = pairs[start : start + 10]
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in chunk],
            }
        )
    return blocks


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _link(title: str, url: str | None) -> str:
    # Titles are platform text: escape what mrkdwn would read as markup.
    safe = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<{url}|{safe.replace('|', '¦')}>" if url else safe


def post_metrics_reply(metrics: PostMetrics) -> Reply:
    """One post's figures."""
    platform = _PLATFORM.get(metrics.platform, metrics.platform)
    title = metrics.title or metrics.post_id
    pairs = _fields(metrics.figures)
    summary = ", ".join(f"{k} {v}" for k, v in pairs) or "no figures reported yet"
    text = f"{platform}: {title}: {summary} (as of {_as_of(metrics.as_of)})"
    blocks: list[dict[str, Any]] = [
        _header(f"{platform}: {title}"),
        *_field_blocks(pairs),
        context_block(
            " · ".join(
                part
                for part in (
                    _link("Open post", metrics.url) if metrics.url else "",
                    f"as of {_as_of(metrics.as_of)}",
                )
                if part
            )
        ),
    ]
    return Reply(text, blocks=clamp_blocks(blocks))


def account_metrics_reply(metrics: AccountMetrics) -> Reply:
    """An account's figures over a period, with its top posts."""
    platform = _PLATFORM.get(metrics.platform, metrics.platform)
    period = f"{metrics.start:%b %d} to {metrics.end:%b %d, %Y}"
    pairs = _fields(metrics.figures)
    summary = ", ".join(f"{k} {v}" for k, v in pairs) or "no figures reported yet"
    lines = [f"{platform}, {period}: {summary}"]
    blocks: list[dict[str, Any]] = [_header(f"{platform}, {period}"), *_field_blocks(pairs)]
    top = metrics.top_posts[:_MAX_TOP_POSTS]
    if top:
        rows = []
        for rank, post in enumerate(top, 1):
            views = post.figures.get(Metric.VIEWS)
            shown = f" · {format_figure(Metric.VIEWS, views)} views" if views else ""
            rows.append(f"{rank}. {_link(post.title or post.post_id, post.url)}{shown}")
            lines.append(f"{rank}. {post.title or post.post_id}{shown}")
        body = "*Top posts*\n" + "\n".join(rows)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:SECTION_TEXT_MAX]}}
        )
    blocks.append(context_block(f"as of {_as_of(metrics.as_of)}"))
    lines.append(f"(as of {_as_of(metrics.as_of)})")
    return Reply("\n".join(lines), blocks=clamp_blocks(blocks))


def caption_reply(caption: str, *, platform: str, title: str | None = None) -> Reply:
    """A caption draft; long drafts are split over sections rather than cut."""
    name = _PLATFORM.get(platform, platform)
    head = f"Caption draft for {name}" + (f": {title}" if title else "")
    blocks: list[dict[str, Any]] = [_header(head[:150])]
    for start in range(0, max(len(caption), 1), SECTION_TEXT_MAX):
        part = caption[start : start + SECTION_TEXT_MAX] or " "
        blocks.append({"type": "section", "text": {"type": "plain_text", "text": part}})
    blocks.append(
        context_block(f"{len(caption):,} characters · nothing is posted until you approve")
    )
    return Reply(f"{head}\n\n{caption}", blocks=clamp_blocks(blocks))
