"""Recent posts, batched statistics and Analytics reports, normalized."""

from __future__ import annotations

from datetime import date

import pytest

from integrations.base import Metric, TokenSet
from integrations.errors import TokenExpired


@pytest.fixture
def channel_and_token(google):
    channel = google.add_channel("Stats")
    raw = google.issue_tokens(channel.id)
    return channel, TokenSet(access_token=raw["access_token"], refresh_token=raw["refresh_token"])


async def test_recent_posts_pages_fifty_at_a_time(google, make_platform, channel_and_token):
    channel, token = channel_and_token
    for i in range(120):
        google.add_video(channel, title=f"v{i}")
    platform = make_platform()
    profile = await platform.profile(token)
    posts = await platform.recent_posts(token, profile, limit=120)
    assert [p.post_id for p in posts] == channel.videos[:120]
    calls = google.calls_to("/playlistItems")
    assert [c["maxResults"] for c in calls] == ["50", "50", "20"]
    assert all(c["playlistId"] == channel.uploads_playlist for c in calls)


async def test_post_metrics_batch_fifty_ids_per_call(google, make_platform, channel_and_token):
    channel, token = channel_and_token
    ids = [
        google.add_video(channel, views=100 + i, likes=None if i == 0 else 5) for i in range(101)
    ]
    platform = make_platform()
    metrics = await platform.post_metrics(token, ids)
    calls = google.calls_to("/videos")
    assert len(calls) == 3  # never one call per video
    assert sorted(len(c["id"].split(",")) for c in calls) == [1, 50, 50]
    by_id = {m.post_id: m for m in metrics}
    assert len(by_id) == 101
    hidden = by_id[ids[0]]
    assert Metric.LIKES not in hidden.figures  # hidden likes are absent, not zero
    assert hidden.value(Metric.VIEWS) == 100
    shown = by_id[ids[1]]
    assert shown.figures[Metric.LIKES].source == "statistics.likeCount"
    assert shown.value(Metric.ENGAGEMENT_RATE) == pytest.approx((5 + 2) / 101)
    assert Metric.SHARES not in shown.figures
    # The snippet's medium thumbnail, for answers that show a picture of the post.
    assert shown.thumbnail_url == f"https://i.ytimg.example/vi/{ids[1]}/mqdefault.jpg"


async def test_account_metrics_from_analytics(google, make_platform, channel_and_token):
    channel, token = channel_and_token
    google.add_video(channel, views=50)
    top = google.add_video(channel, views=500)
    platform = make_platform()
    profile = await platform.profile(token)
    result = await platform.account_metrics(
        token, profile, start=date(2026, 11, 1), end=date(2026, 11, 7)
    )
    reports = google.calls_to("/v2/reports")
    assert len(reports) == 3
    assert all(r["ids"] == "channel==MINE" for r in reports)
    assert reports[0]["metrics"] == (
        "views,likes,comments,shares,estimatedMinutesWatched,averageViewDuration,"
        "subscribersGained,subscribersLost"
    )
    assert {r.get("dimensions") for r in reports} == {None, "day", "video"}
    assert result.value(Metric.VIEWS) == sum(10 * (i + 1) for i in range(7))
    assert result.value(Metric.AVG_VIEW_DURATION_SECONDS) == 120
    assert (
        result.figures[Metric.WATCH_TIME_MINUTES].source
        == "youtubeAnalytics.estimatedMinutesWatched"
    )
    assert result.value(Metric.FOLLOWERS_GAINED) == 14
    assert result.series[0][0] == date(2026, 11, 1)
    assert len(result.series) == 7
    assert result.top_posts[0].post_id == top


async def test_expired_access_token_maps_to_token_expired(google, make_platform, channel_and_token):
    _, token = channel_and_token
    google.expire_access_tokens()
    with pytest.raises(TokenExpired):
        await make_platform().profile(token)
