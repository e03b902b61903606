"""Pure converters from X API v2 JSON to the normalized metrics model.

Post fields (docs.x.com, "Metrics"): `public_metrics` has retweet, reply, like, quote
and bookmark counts and `impression_count`; `non_public_metrics` and
`organic_metrics` (impressions, link and profile clicks) exist only for the
authorizing account's own posts created within the last 30 days. A metric X does
not report stays absent. "Views" on X are impressions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.base import Figure, Metric, PostMetrics, with_engagement_rate

PLATFORM = "x"
# X ids are snowflakes: milliseconds since this epoch, shifted left 22 bits.
SNOWFLAKE_EPOCH_MS = 1288834974657
PRIVATE_METRICS_DAYS = 30
PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics")

# (normalized metric, object, field), first found wins.
_FIELDS: tuple[tuple[Metric, str, str], ...] = (
    (Metric.VIEWS, "public_metrics", "impression_count"),
    (Metric.VIEWS, "non_public_metrics", "impression_count"),
    (Metric.VIEWS, "organic_metrics", "impression_count"),
    (Metric.LIKES, "public_metrics", "like_count"),
    (Metric.COMMENTS, "public_metrics", "reply_count"),
    (Metric.SAVES, "public_metrics", "bookmark_count"),
)


def snowflake_time(post_id: str) -> datetime | None:
    """When an X id was created (ids encode their creation time); None if not an X id."""
    if not post_id.isdigit() or len(post_id) > 19:
        return None
    ms = (int(post_id) >> 22) + SNOWFLAKE_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def private_metrics_allowed(post_id: str, now: datetime, *, margin: timedelta) -> bool:
    """Non-public and organic metrics exist for posts younger than 30 days (less `margin`)."""
    created = snowflake_time(post_id)
    return created is not None and now - created < timedelta(days=PRIVATE_METRICS_DAYS) - margin


def _count(tweet: dict[str, Any], group: str, field: str) -> float | None:
    values = tweet.get(group)
    value = values.get(field) if isinstance(values, dict) else None
    return float(value) if isinstance(value, int | float) else None


def figures_from_tweet(tweet: dict[str, Any]) -> dict[Metric, Figure]:
    """Normalized figures of one post object, each naming the X field it came from."""
    figures: dict[Metric, Figure] = {}
    for metric, group, field in _FIELDS:
        value = _count(tweet, group, field)
        if metric not in figures and value is not None:
            figures[metric] = Figure(value, f"{group}.{field}")
    # Shares: reposts plus quotes, the "reposts" total X's apps show.
    parts = [
        (value, f"public_metrics.{field}")
        for field in ("retweet_count", "quote_count")
        if (value := _count(tweet, "public_metrics", field)) is not None
    ]
    if parts:
        figures[Metric.SHARES] = Figure(
            sum(v for v, _ in parts), "+".join(source for _, source in parts)
        )
    return with_engagement_rate(figures)


def parse_time(value: Any) -> datetime | None:
    """X timestamps look like 2026-04-05T07:56:32.000Z."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def title_of(text: Any) -> str | None:
    """A post's first line, shortened, as its title in lists and digests."""
    if not isinstance(text, str) or not text.strip():
        return None
    first = text.strip().splitlines()[0]
    return first if len(first) <= 100 else first[:99] + "…"


def post_url(post_id: str) -> str:
    """A link to a post that works without knowing the author's handle."""
    return f"https://x.com/i/status/{post_id}"


def post_metrics_from(tweet: dict[str, Any], *, as_of: datetime) -> PostMetrics:
    post_id = str(tweet["id"])
    return PostMetrics(
        platform=PLATFORM,
        post_id=post_id,
        as_of=as_of,
        figures=figures_from_tweet(tweet),
        title=title_of(tweet.get("text")),
        url=post_url(post_id),
        published_at=parse_time(tweet.get("created_at")),
    )


def sum_figures(posts: Iterable[PostMetrics]) -> dict[Metric, Figure]:
    """Totals of the posts' figures (each metric over the posts that report it)."""
    totals: dict[Metric, float] = {}
    sources: dict[Metric, str] = {}
    for post in posts:
        for metric, figure in post.figures.items():
            if metric is Metric.ENGAGEMENT_RATE:
                continue
            totals[metric] = totals.get(metric, 0.0) + figure.value
            sources.setdefault(metric, f"sum({figure.source})")
    return with_engagement_rate({m: Figure(v, sources[m]) for m, v in totals.items()})


def field_denied_ids(errors: Any) -> set[str]:
    """Ids of posts X refused a requested field for (not the account's own, or too old)."""
    out: set[str] = set()
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        kind = str(error.get("type") or "")
        if kind.endswith("not-authorized-for-field") or error.get("field") in PRIVATE_FIELDS:
            resource = error.get("resource_id") or error.get("value")
            if isinstance(resource, str):
                out.add(resource)
    return out
