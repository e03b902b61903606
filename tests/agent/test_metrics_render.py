"""Metrics read as people write them: labels with units, titles only when there is one."""

from __future__ import annotations

from datetime import UTC, date, datetime

from agent.actions.metrics import format_figure, render
from agent.ports import MetricsReport
from integrations.base import AccountMetrics, Figure, Metric, PostMetrics
from tests.fakes.platforms import directory

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_every_metric_has_a_readable_label() -> None:
    assert format_figure(Metric.WATCH_TIME_MINUTES, Figure(1004, "m")) == "watch time 1,004 min"
    assert format_figure(Metric.AVG_VIEW_DURATION_SECONDS, Figure(16, "s")) == "avg view 16 s"
    assert format_figure(Metric.ENGAGEMENT_RATE, Figure(0.0421, "r")) == "engagement 4.21%"
    for metric in Metric:
        assert "_" not in format_figure(metric, Figure(1, "x"))


def test_untitled_posts_show_no_empty_title() -> None:
    post = PostMetrics("youtube", "vid1", NOW, {Metric.VIEWS: Figure(5, "v")}, title=None)
    acct = AccountMetrics(
        "youtube", "UC1", date(2026, 11, 18), date(2026, 11, 24), NOW, {}, top_posts=[post]
    )
    text = render(MetricsReport(as_of=NOW, accounts=[("yt-1", acct)]), "7d", directory())
    assert "top post vid1: views 5" in text and 'title=""' not in text
