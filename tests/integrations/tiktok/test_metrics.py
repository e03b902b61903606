"""Profile, account totals, recent videos and batched video counters, normalized."""

from __future__ import annotations

from datetime import UTC, date, datetime

from integrations.base import Metric
from tests.fakes.tiktok import USER_INFO, VIDEO_LIST, VIDEO_QUERY
from tests.integrations.tiktok.conftest import TT


async def test_profile_reads_the_fields_its_scopes_allow(tt: TT) -> None:
    profile = await tt.platform.profile(tt.token)
    assert profile.external_id == tt.creator.open_id
    assert profile.handle == "studio.fern" and profile.display_name == "Fern Studio"
    assert profile.followers == 4200
    assert profile.url == "https://vm.tiktok.example/studio.fern"
    fields = tt.fake.calls_to(USER_INFO)[0].query["fields"].split(",")
    assert {"open_id", "username", "follower_count", "likes_count", "video_count"} <= set(fields)


async def test_profile_with_only_the_basic_scope_leaves_the_rest_absent(tt: TT) -> None:
    token = tt.token_with(("user.info.basic", "video.list"))
    profile = await tt.platform.profile(token)
    assert tt.fake.calls_to(USER_INFO)[0].query["fields"] == "open_id,display_name"
    assert profile.handle == "Fern Studio"  # no username without user.info.profile
    assert profile.followers is None  # unknown, not 0
    assert profile.url is None


async def test_account_metrics_are_totals_as_of_now(tt: TT) -> None:
    tt.creator.likes = 98_000
    account = await tt.platform.profile(tt.token)
    report = await tt.platform.account_metrics(
        tt.token, account, start=date(2026, 1, 1), end=date(2026, 1, 7)
    )
    today = datetime.now(UTC).date()
    assert report.start == report.end == today  # TikTok gives no per-period figures
    assert report.figures[Metric.FOLLOWERS].value == 4200
    assert report.figures[Metric.FOLLOWERS].source == "follower_count"
    assert report.figures[Metric.LIKES].value == 98_000
    assert report.figures[Metric.LIKES].source == "likes_count"
    assert Metric.VIEWS not in report.figures  # TikTok reports no account views here
    assert Metric.ENGAGEMENT_RATE not in report.figures
    assert report.series == []


async def test_account_metrics_without_the_stats_scope_are_absent_not_zero(tt: TT) -> None:
    token = tt.token_with(("user.info.basic", "user.info.profile", "video.list"))
    account = await tt.platform.profile(token)
    report = await tt.platform.account_metrics(token, account, start=date.today(), end=date.today())
    assert report.figures == {}
    assert tt.fake.calls_to(USER_INFO)[-1].query["fields"] == "open_id"


async def test_post_metrics_batch_20_ids_a_call_and_leave_missing_ones_out(tt: TT) -> None:
    videos = [
        tt.fake.add_video(tt.creator, f"clip {i}", views=100 * i, likes=i, comments=2, shares=1)
        for i in range(45)
    ]
    other = tt.fake.add_creator("someone.else")
    theirs = tt.fake.add_video(other, "not ours", views=5)
    asked = [v.id for v in videos] + [theirs.id, "7399999999999999999"]
    results = await tt.platform.post_metrics(tt.token, asked)
    calls = tt.fake.calls_to(VIDEO_QUERY)
    assert len(calls) == 3  # ceil(47 / 20)
    assert [len(c.body["filters"]["video_ids"]) for c in calls] == [20, 20, 7]
    assert [m.post_id for m in results] == [v.id for v in videos]  # asked order, missing left out
    clip = results[7]
    assert clip.title == "clip 7" and clip.url and clip.url.endswith(f"/video/{videos[7].id}")
    assert clip.thumbnail_url == f"https://p16-sign.tiktokcdn.example/{videos[7].id}.jpeg"
    assert clip.published_at == datetime.fromtimestamp(videos[7].create_time, tz=UTC)
    assert (
        clip.figures[Metric.VIEWS].value == 700
        and clip.figures[Metric.VIEWS].source == "view_count"
    )
    assert clip.figures[Metric.LIKES].source == "like_count"
    assert clip.figures[Metric.COMMENTS].source == "comment_count"
    assert clip.figures[Metric.SHARES].source == "share_count"
    rate = clip.figures[Metric.ENGAGEMENT_RATE]
    assert rate.value == round((7 + 2 + 1) / 700, 6)
    assert rate.source == "(like_count+comment_count+share_count)/view_count"
    assert Metric.SAVES not in clip.figures and Metric.REACH not in clip.figures
    fields = calls[0].query["fields"].split(",")
    assert {"id", "title", "view_count", "like_count", "comment_count", "share_count"} <= set(
        fields
    )


async def test_post_ids_that_are_not_video_ids_cost_no_call(tt: TT) -> None:
    # A private post or a draft is known by its publish id, which no video query accepts.
    assert await tt.platform.post_metrics(tt.token, ["v_pub_file~v2.123", ""]) == []
    assert not tt.fake.calls_to(VIDEO_QUERY)


async def test_duplicate_ids_are_read_once(tt: TT) -> None:
    video = tt.fake.add_video(tt.creator, "once")
    results = await tt.platform.post_metrics(tt.token, [video.id, video.id])
    assert [m.post_id for m in results] == [video.id]
    assert tt.fake.calls_to(VIDEO_QUERY)[0].body["filters"]["video_ids"] == [video.id]


async def test_recent_posts_follow_the_cursor_and_skip_private_videos(tt: TT) -> None:
    for i in range(30):
        tt.fake.add_video(tt.creator, f"v{i}", public=i % 10 != 0)
    tt.fake.page_cap = 8  # TikTok may answer short pages while has_more holds
    account = await tt.platform.profile(tt.token)
    posts = await tt.platform.recent_posts(tt.token, account, limit=25)
    assert len(posts) == 25
    titles = [p.title for p in posts]
    assert titles[0] == "v29" and "v20" not in titles and "v10" not in titles
    calls = tt.fake.calls_to(VIDEO_LIST)
    assert len(calls) == 4
    assert all(c.body["max_count"] <= 20 for c in calls)
    assert "cursor" not in calls[0].body
    assert [c.body["cursor"] for c in calls[1:]] == sorted(
        (c.body["cursor"] for c in calls[1:]), reverse=True
    )
    assert posts[0].published_at is not None and posts[0].url


async def test_recent_posts_stop_when_there_are_no_more(tt: TT) -> None:
    for i in range(3):
        tt.fake.add_video(tt.creator, f"v{i}")
    account = await tt.platform.profile(tt.token)
    posts = await tt.platform.recent_posts(tt.token, account, limit=50)
    assert [p.title for p in posts] == ["v2", "v1", "v0"]
    assert len(tt.fake.calls_to(VIDEO_LIST)) == 1
    assert tt.fake.calls_to(VIDEO_LIST)[0].body["max_count"] == 20
