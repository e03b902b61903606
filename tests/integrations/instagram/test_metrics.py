"""Post and account insights, normalized: sources named, missing metrics absent, not zero."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from integrations.base import Metric, TokenSet
from integrations.errors import InvalidRequest
from tests.integrations.instagram.conftest import IG

REEL_INSIGHTS = {
    "views": 5000,
    "reach": 4000,
    "likes": 300,
    "comments": 40,
    "shares": 25,
    "saved": 35,
    "total_interactions": 400,
    "ig_reels_avg_watch_time": 7250,
    "ig_reels_video_view_total_time": 3_600_000,
}


async def test_post_metrics_are_normalized_with_engagement_rate(ig: IG) -> None:
    reel = ig.fake.add_media(
        ig.user, "Reel one\nsecond line", like_count=299, comments_count=39, insights=REEL_INSIGHTS
    )
    photo = ig.fake.add_media(
        ig.user,
        "A photo",
        media_type="IMAGE",
        media_product_type="FEED",
        like_count=10,
        comments_count=2,
        insights={"reach": 100, "likes": 10, "comments": 2, "saved": 3},
    )

    results = await ig.platform.post_metrics(ig.token, [reel.id, photo.id])
    by_id = {m.post_id: m for m in results}
    assert [m.post_id for m in results] == [reel.id, photo.id]

    r = by_id[reel.id]
    assert r.platform == "instagram" and r.title == "Reel one"
    assert r.url == reel.permalink and r.published_at is not None
    assert r.figures[Metric.VIEWS].value == 5000 and r.figures[Metric.VIEWS].source == "views"
    assert r.figures[Metric.REACH].value == 4000
    assert r.figures[Metric.LIKES].value == 300 and r.figures[Metric.LIKES].source == "likes"
    assert r.figures[Metric.SAVES].value == 35 and r.figures[Metric.SAVES].source == "saved"
    assert r.figures[Metric.AVG_VIEW_DURATION_SECONDS].value == 7.25
    assert r.figures[Metric.AVG_VIEW_DURATION_SECONDS].source == "ig_reels_avg_watch_time"
    assert r.figures[Metric.WATCH_TIME_MINUTES].value == 60.0
    rate = r.figures[Metric.ENGAGEMENT_RATE]
    assert rate.value == pytest.approx((300 + 40 + 25 + 35) / 4000)
    assert rate.source == "(likes+comments+shares+saved)/reach"

    p = by_id[photo.id]
    assert Metric.SHARES not in p.figures  # the photo reported no shares: absent, not 0
    assert Metric.VIEWS not in p.figures
    assert Metric.WATCH_TIME_MINUTES not in p.figures
    assert p.value(Metric.SHARES) is None
    assert p.figures[Metric.ENGAGEMENT_RATE].value == pytest.approx((10 + 2 + 3) / 100)

    # One basics read for both posts plus one insights read per media kind (here one post each).
    assert len(ig.fake.calls) == 3
    assert ig.fake.calls[0].path == "" and ig.fake.calls[0].params["ids"] == f"{reel.id},{photo.id}"
    assert {c.path for c in ig.fake.calls[1:]} == {reel.id, photo.id}
    assert all(c.params["fields"].startswith("insights.metric(") for c in ig.fake.calls[1:])


async def test_a_post_without_insights_keeps_only_its_counts(ig: IG) -> None:
    fresh = ig.fake.add_media(ig.user, "just posted", like_count=4, comments_count=0, insights={})
    (m,) = await ig.platform.post_metrics(ig.token, [fresh.id])
    assert m.figures[Metric.LIKES].value == 4 and m.figures[Metric.LIKES].source == "like_count"
    assert m.figures[Metric.COMMENTS].value == 0  # a real zero count is kept
    assert Metric.REACH not in m.figures and Metric.VIEWS not in m.figures
    assert Metric.ENGAGEMENT_RATE not in m.figures  # nothing to divide by


async def test_deleted_posts_are_left_out(ig: IG) -> None:
    kept = ig.fake.add_media(ig.user, "kept", insights={"reach": 10, "likes": 1})
    results = await ig.platform.post_metrics(ig.token, [kept.id, "17999999999999999"])
    assert [m.post_id for m in results] == [kept.id]


async def test_without_multiple_id_reads_posts_are_read_one_by_one(ig: IG) -> None:
    ig.fake.multi_id_supported = False
    reel = ig.fake.add_media(ig.user, "r", like_count=1, insights={"reach": 10, "likes": 2})
    photo = ig.fake.add_media(
        ig.user, "p", media_product_type="FEED", media_type="IMAGE", insights={"reach": 5}
    )
    results = await ig.platform.post_metrics(ig.token, [reel.id, photo.id])
    assert results[0].figures[Metric.LIKES].value == 2
    assert results[1].figures[Metric.REACH].value == 5
    assert len([c for c in ig.fake.calls if c.path == ""]) == 1  # refused once, then remembered
    await ig.platform.post_metrics(ig.token, [reel.id, photo.id])
    assert len([c for c in ig.fake.calls if c.path == ""]) == 1


async def test_many_posts_are_batched(ig: IG) -> None:
    media = [ig.fake.add_media(ig.user, f"post {i}", insights={"reach": i + 1}) for i in range(60)]
    results = await ig.platform.post_metrics(ig.token, [m.id for m in media])
    assert len(results) == 60
    assert len([c for c in ig.fake.calls if c.path == ""]) == 4  # 2 chunks x (basics + insights)
    assert not [c for c in ig.fake.calls if c.path.endswith("/insights")]


async def test_recent_posts_follow_paging_cursors(ig: IG) -> None:
    for i in range(5):
        ig.fake.add_media(ig.user, f"caption {i}")
    ig.fake.page_size_cap = 2
    posts = await ig.platform.recent_posts(ig.token, await ig.platform.profile(ig.token), limit=4)
    assert [p.title for p in posts] == ["caption 4", "caption 3", "caption 2", "caption 1"]
    assert len(ig.fake.calls_to("GET", "me/media")) == 2


async def test_account_metrics_totals_follows_and_daily_series(ig: IG) -> None:
    start, end = date(2026, 11, 1), date(2026, 11, 7)
    ig.user.account_totals = {
        "views": 20000,
        "reach": 8000,
        "likes": 600,
        "comments": 80,
        "shares": 40,
        "saves": 80,
        "total_interactions": 800,
    }
    ig.user.follows = (120, 15)
    for i in range(7):
        ig.user.daily[start + timedelta(days=i)] = {"reach": 1000 + i, "follower_count": 10 + i}
    account = await ig.platform.profile(ig.token)

    metrics = await ig.platform.account_metrics(ig.token, account, start=start, end=end)
    assert metrics.account_id == ig.user.user_id
    assert metrics.value(Metric.VIEWS) == 20000
    assert metrics.value(Metric.REACH) == 8000
    assert metrics.figures[Metric.SAVES].source == "saves"
    assert metrics.value(Metric.FOLLOWERS_GAINED) == 120
    assert metrics.value(Metric.FOLLOWERS_LOST) == 15
    assert metrics.figures[Metric.FOLLOWERS_GAINED].source == "follows_and_unfollows:FOLLOWER"
    assert metrics.value(Metric.ENGAGEMENT_RATE) == pytest.approx((600 + 80 + 40 + 80) / 8000)
    assert [d for d, _ in metrics.series] == [start + timedelta(days=i) for i in range(7)]
    first_day = metrics.series[0][1]
    assert first_day[Metric.REACH].value == 1000
    assert first_day[Metric.FOLLOWERS_GAINED].value == 10
    assert first_day[Metric.FOLLOWERS_GAINED].source == "follower_count"

    (totals,) = [
        c
        for c in ig.fake.calls
        if c.path == "me/insights"
        and c.params.get("metric_type") == "total_value"
        and "breakdown" not in c.params
    ]
    assert totals.params["period"] == "day"
    assert int(totals.params["until"]) - int(totals.params["since"]) == 7 * 86400


async def test_account_metrics_leave_unreported_figures_absent(ig: IG) -> None:
    ig.user.account_totals = {"reach": 50}
    ig.user.follows = None  # e.g. fewer than 100 followers: Instagram gives no breakdown
    account = await ig.platform.profile(ig.token)
    metrics = await ig.platform.account_metrics(
        ig.token, account, start=date(2026, 11, 1), end=date(2026, 11, 2)
    )
    assert metrics.figures.keys() == {Metric.REACH}
    assert metrics.value(Metric.FOLLOWERS_GAINED) is None
    assert metrics.series == []


async def test_account_metrics_range_is_checked(ig: IG) -> None:
    account = await ig.platform.profile(ig.token)
    with pytest.raises(InvalidRequest) as info:
        await ig.platform.account_metrics(
            ig.token, account, start=date(2026, 9, 1), end=date(2026, 11, 1)
        )
    assert info.value.reason == "range_too_long" and "30 days" in str(info.value)
    with pytest.raises(InvalidRequest):
        await ig.platform.account_metrics(
            ig.token, account, start=date(2026, 11, 2), end=date(2026, 11, 1)
        )


async def test_one_deleted_post_does_not_turn_a_batch_into_single_reads(ig: IG) -> None:
    media = [ig.fake.add_media(ig.user, f"post {i}", insights={"reach": i + 1}) for i in range(50)]
    ids = [m.id for m in media]
    ids[17] = "17999999999999999"  # deleted since it was listed
    results = await ig.platform.post_metrics(ig.token, ids)
    assert len(results) == 49 and "17999999999999999" not in {r.post_id for r in results}
    basics = [c for c in ig.fake.calls if "like_count" in c.params.get("fields", "")]
    # Graph names the missing id: the batch is read again without it, once.
    assert [c.path for c in basics] == ["", ""]
    assert "17999999999999999" not in basics[1].params["ids"].split(",")
    assert len(basics[1].params["ids"].split(",")) == 49


async def test_an_unnamed_missing_post_splits_its_batch_in_halves(ig: IG) -> None:
    ig.fake.names_missing_ids = False
    media = [ig.fake.add_media(ig.user, f"post {i}", insights={"reach": i + 1}) for i in range(50)]
    ids = [m.id for m in media]
    ids[17] = "17999999999999999"
    results = await ig.platform.post_metrics(ig.token, ids)
    assert len(results) == 49
    basics = [c for c in ig.fake.calls if "like_count" in c.params.get("fields", "")]
    # Halved around the missing post: about 2·log2(50) reads, not 50.
    assert len(basics) <= 13, len(basics)


async def test_a_refused_multiple_id_read_falls_back_for_that_account_for_a_while(
    ig: IG,
) -> None:
    ig.fake.multi_id_supported = False
    posts = [ig.fake.add_media(ig.user, f"p{i}", insights={"reach": 1}).id for i in range(2)]
    await ig.platform.post_metrics(ig.token, posts)
    ig.fake.multi_id_supported = True

    def multi_id_reads() -> int:  # of the basics (insights are read the same way)
        return len(
            [c for c in ig.fake.calls if c.path == "" and "like_count" in c.params["fields"]]
        )

    before = multi_id_reads()
    await ig.platform.post_metrics(ig.token, posts)
    assert multi_id_reads() == before  # this account: one by one for a while
    other = ig.fake.add_user("other.studio")
    other_token = TokenSet(access_token=ig.fake.issue_token(other))
    theirs = [ig.fake.add_media(other, f"o{i}", insights={"reach": 1}).id for i in range(2)]
    await ig.platform.post_metrics(other_token, theirs)
    assert multi_id_reads() == before + 1  # another account keeps its batches
    ig.platform._single_reads.clear()  # once the while is over...
    await ig.platform.post_metrics(ig.token, posts)
    assert multi_id_reads() == before + 2  # ...batched again
