"""YouTube Analytics v2 reports and Data API statistics -> normalized figures."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from integrations.base import Figure, Metric, with_engagement_rate

# Analytics column -> normalized metric (the column name is recorded as the source).
ANALYTICS_METRICS: dict[str, Metric] = {
    "views": Metric.VIEWS,
    "likes": Metric.LIKES,
    "comments": Metric.COMMENTS,
    "shares": Metric.SHARES,
    "estimatedMinutesWatched": Metric.WATCH_TIME_MINUTES,
    "averageViewDuration": Metric.AVG_VIEW_DURATION_SECONDS,
    "subscribersGained": Metric.FOLLOWERS_GAINED,
    "subscribersLost": Metric.FOLLOWERS_LOST,
}
REPORT_METRICS = ",".join(ANALYTICS_METRICS)

# videos.list `statistics` fields -> normalized metric. Hidden counts are simply absent.
STATISTICS_METRICS: dict[str, Metric] = {
    "viewCount": Metric.VIEWS,
    "likeCount": Metric.LIKES,
    "commentCount": Metric.COMMENTS,
}


def figures_from_statistics(statistics: Mapping[str, Any]) -> dict[Metric, Figure]:
    figures: dict[Metric, Figure] = {}
    for field, metric in STATISTICS_METRICS.items():
        raw = statistics.get(field)
        if raw is None:
            continue
        try:
            figures[metric] = Figure(float(raw), f"statistics.{field}")
        except (TypeError, ValueError):
            continue
    return with_engagement_rate(figures)


def report_rows(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A resultTable's rows as dicts keyed by column name."""
    names = [h.get("name") for h in table.get("columnHeaders") or []]
    return [dict(zip(names, row, strict=False)) for row in table.get("rows") or []]


def figures_from_row(row: Mapping[str, Any]) -> dict[Metric, Figure]:
    figures: dict[Metric, Figure] = {}
    for column, metric in ANALYTICS_METRICS.items():
        value = row.get(column)
        if value is None:
            continue
        figures[metric] = Figure(float(value), f"youtubeAnalytics.{column}")
    return with_engagement_rate(figures)


def series_from_table(table: Mapping[str, Any]) -> list[tuple[date, dict[Metric, Figure]]]:
    out = []
    for row in report_rows(table):
        day = row.get("day")
        if not day:
            continue
        out.append((date.fromisoformat(str(day)), figures_from_row(row)))
    out.sort(key=lambda item: item[0])
    return out
