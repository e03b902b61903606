"""Metrics read as people write them: labels with units, titles only when there is one,
top posts with their link and picture, changes against the day before, and a context
line saying what is estimated and what did not answer."""

from __future__ import annotations

from datetime import UTC, date, datetime

from agent.actions.metrics import change_text, format_figure, metrics_layout, render
from agent.layout import Layout
from agent.ports import MetricsReport
from integrations.base import AccountMetrics, Figure, Metric, PostMetrics
from tests.fakes.platforms import directory

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_every_metric_has_a_readable_label() -> None:
    assert format_figure(Metric.WATCH_TIME_MINUTES, Figure(1004, "m")) == "Watch time 1,004 min"
    assert format_figure(Metric.AVG_VIEW_DURATION_SECONDS, Figure(16, "s")) == "Avg view 16 s"
    assert format_figure(Metric.ENGAGEMENT_RATE, Figure(0.0421, "r")) == "Engagement 4.21%"
    for metric in Metric:
        label = format_figure(metric, Figure(1, "x"))
        assert "_" not in label and label[0].isupper(), label


def test_untitled_posts_show_no_empty_title() -> None:
    post = PostMetrics("youtube", "vid1", NOW, {Metric.VIEWS: Figure(5, "v")}, title=None)
    acct = AccountMetrics(
        "youtube", "UC1", date(2026, 11, 18), date(2026, 11, 24), NOW, {}, top_posts=[post]
    )
    text = render(MetricsReport(as_of=NOW, accounts=[("yt-1", acct)]), "7d", directory())
    assert "Post vid1: Views 5" in text and 'title=""' not in text and '""' not in text


def _report() -> MetricsReport:
    ranked = PostMetrics("youtube", "vid1", NOW, {Metric.VIEWS: Figure(900, "views")})
    read = PostMetrics(
        "youtube",
        "vid1",
        NOW,
        {Metric.VIEWS: Figure(880, "viewCount")},
        title="Launch <day> & more",
        url="https://www.youtube.com/watch?v=vid1",
        thumbnail_url="https://i.ytimg.example/vi/vid1/mqdefault.jpg",
    )
    figures = {
        Metric.VIEWS: Figure(1204, "views"),
        Metric.WATCH_TIME_MINUTES: Figure(1004, "estimatedMinutesWatched"),
        Metric.AVG_VIEW_DURATION_SECONDS: Figure(16, "averageViewDuration"),
    }
    series = [
        (date(2026, 11, 23), {Metric.VIEWS: Figure(100, "views")}),
        (date(2026, 11, 24), {Metric.VIEWS: Figure(112, "views")}),
    ]
    acct = AccountMetrics(
        "youtube",
        "UC1",
        date(2026, 11, 18),
        date(2026, 11, 24),
        NOW,
        figures,
        series=series,
        top_posts=[ranked],
    )
    return MetricsReport(
        as_of=NOW,
        accounts=[("yt-1", acct)],
        posts=[("yt-1", read)],
        unavailable={"instagram": "Instagram is not answering"},
    )


def test_layout_has_fields_top_posts_change_and_context() -> None:
    platforms = directory()
    layout = metrics_layout(_report(), "7d", platforms)
    [section] = layout.sections
    fields = {f.label: f.value for f in section.fields}
    assert fields["Views"] == "1,204"
    assert fields["Watch time"] == "1,004 min" and fields["Avg view"] == "16 s"
    assert fields["Yesterday"] == "Views 112, +12 % vs the day before"
    # The analytics ranking has no title: the post's own read supplies title, link, picture.
    [top] = section.entries
    assert top.title == "Launch <day> & more" and top.quoted
    assert top.url == "https://www.youtube.com/watch?v=vid1"
    assert top.thumbnail_url and top.thumbnail_url.endswith("mqdefault.jpg")
    assert section.colour == platforms.capabilities("youtube").colour is not None
    line = layout.context_line()
    assert line.startswith("as of 2026-11-25 08:00 UTC")
    assert "estimated: Watch time, Avg view" in line
    assert "unavailable: Instagram (Instagram is not answering)" in line
    # The plain text (shell, notifications) says the same.
    text = layout.plain_text()
    assert "Views 1,204 · Watch time 1,004 min · Avg view 16 s" in text
    assert "+12 % vs the day before" in text and "estimated: Watch time" in text
    assert '"Launch <day> & more": Views 900' in text  # platform text quoted as data


def test_layout_survives_the_round_trip_a_share_takes() -> None:
    layout = metrics_layout(_report(), "7d", directory())
    assert Layout.from_json(layout.to_json()) == layout


def test_no_accounts_says_no_figures_yet() -> None:
    text = render(MetricsReport(as_of=NOW), "7d", directory())
    assert "No figures yet." in text


def test_change_reads_as_people_say_it() -> None:
    assert change_text(112, 100) == "+12 %"
    assert change_text(97, 100) == "-3 %"
    assert change_text(100, 100) == "±0 %"
    assert change_text(5, 0) is None  # nothing to compare with: no made-up percentage
