"""Metrics against the fake: batching, private metrics only where X gives them, normalization."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from integrations.base import AccountProfile, Metric
from integrations.errors import InvalidRequest
from integrations.x.metrics import figures_from_tweet, snowflake_time
from tests.fakes.x import snowflake
from tests.integrations.x.conftest import XEnv

PUBLIC = {
    "retweet_count": 3,
    "reply_count": 4,
    "like_count": 50,
    "quote_count": 2,
    "bookmark_count": 7,
    "impression_count": 1000,
}


def _account(x: XEnv) -> AccountProfile:
    return AccountProfile(external_id=x.user.id, handle=x.user.username, display_name="Fern")


async def test_250_ids_take_3_calls_and_missing_ones_are_absent(x: XEnv) -> None:
    posts = [x.fake.add_post(x.user, f"post {i}", public=dict(PUBLIC)) for i in range(245)]
    missing = [snowflake(x.clock.now() - 3600, 4_000_000 + i) for i in range(5)]
    ids = [p.id for p in posts] + missing
    found = await x.make().post_metrics(x.token, ids)
    assert x.fake.requests["GET /2/tweets"] == 3
    assert [m.post_id for m in found] == [p.id for p in posts]
    assert (
        found[0].value(Metric.LIKES) == 50
        and found[0].url == f"https://x.com/i/status/{posts[0].id}"
    )


async def test_private_metrics_only_for_own_posts_under_30_days(x: XEnv) -> None:
    other = x.fake.add_user("someone_else")
    young = x.fake.add_post(
        x.user,
        "young",
        age_days=2,
        public={"like_count": 5},
        non_public={"impression_count": 900, "url_link_clicks": 3},
    )
    old = x.fake.add_post(x.user, "old", age_days=45, public={"like_count": 9})
    borderline = x.fake.add_post(x.user, "edge", age_days=29.99, public={"like_count": 1})
    foreign = x.fake.add_post(
        other, "theirs", age_days=1, public={"like_count": 2, "impression_count": 40}
    )
    found = {
        m.post_id: m
        for m in await x.make().post_metrics(x.token, [young.id, old.id, borderline.id, foreign.id])
    }
    # Asked for private metrics only where the id says "under 30 days" (less an hour's margin).
    assert set(x.fake.private_metric_ids) <= {young.id, foreign.id}
    assert young.id in x.fake.private_metric_ids and old.id not in x.fake.private_metric_ids
    assert borderline.id not in x.fake.private_metric_ids
    views = found[young.id].figures[Metric.VIEWS]
    assert views.value == 900 and views.source == "non_public_metrics.impression_count"
    assert Metric.VIEWS not in found[old.id].figures  # not reported: absent, not 0
    assert found[old.id].value(Metric.LIKES) == 9
    # X refused private fields for someone else's post: read again, public only.
    assert found[foreign.id].figures[Metric.VIEWS].source == "public_metrics.impression_count"
    assert x.fake.requests["GET /2/tweets"] == 3  # recent batch, older batch, the refused one


def test_normalization_names_the_x_fields() -> None:
    figures = figures_from_tweet({"id": "1", "public_metrics": dict(PUBLIC)})
    assert figures[Metric.VIEWS].value == 1000
    assert figures[Metric.VIEWS].source == "public_metrics.impression_count"
    assert figures[Metric.LIKES].source == "public_metrics.like_count"
    assert figures[Metric.COMMENTS].value == 4
    assert figures[Metric.SHARES].value == 5
    assert (
        figures[Metric.SHARES].source == "public_metrics.retweet_count+public_metrics.quote_count"
    )
    assert figures[Metric.SAVES].value == 7
    assert figures[Metric.ENGAGEMENT_RATE].value == pytest.approx((50 + 4 + 5 + 7) / 1000)
    assert Metric.REACH not in figures
    assert figures_from_tweet({"id": "1", "public_metrics": {"like_count": 0}}) == {
        Metric.LIKES: figures[Metric.LIKES].__class__(0.0, "public_metrics.like_count")
    }


def test_snowflake_ids_tell_their_time() -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert snowflake_time(snowflake(moment.timestamp(), 7)) == moment
    assert snowflake_time("1445880548472328192").year == 2021  # a real post id
    assert snowflake_time("not-an-id") is None


async def test_recent_posts_page_through_the_timeline(x: XEnv) -> None:
    posts = [x.fake.add_post(x.user, f"post {i}", age_days=i / 10) for i in range(120)]
    found = await x.make().recent_posts(x.token, _account(x), limit=110)
    assert [p.post_id for p in found] == [p.id for p in posts[:110]]  # newest first
    assert x.fake.requests["GET /2/users/:id/tweets"] == 2
    assert found[0].title == "post 0" and found[0].published_at is not None


async def test_account_metrics_sum_the_period_and_rank_top_posts(x: XEnv) -> None:
    today = datetime.fromtimestamp(x.clock.now(), UTC).date()
    inside = [
        x.fake.add_post(
            x.user, f"in {i}", age_days=1 + i, public={"like_count": i, "impression_count": 100 * i}
        )
        for i in range(1, 4)
    ]
    x.fake.add_post(x.user, "too old", age_days=20, public={"like_count": 1000})
    result = await x.make().account_metrics(
        x.token, _account(x), start=today - timedelta(days=6), end=today
    )
    assert result.value(Metric.LIKES) == 6 and result.value(Metric.VIEWS) == 600
    assert result.figures[Metric.LIKES].source == "sum(public_metrics.like_count)"
    assert [p.post_id for p in result.top_posts] == [p.id for p in reversed(inside)]


async def test_account_metrics_refuse_more_than_30_days_before_any_call(x: XEnv) -> None:
    with pytest.raises(InvalidRequest) as info:
        await x.make().account_metrics(
            x.token, _account(x), start=date(2026, 1, 1), end=date(2026, 2, 15)
        )
    assert info.value.reason == "range_too_long" and sum(x.fake.requests.values()) == 0


async def test_non_numeric_ids_are_left_out_without_a_call(x: XEnv) -> None:
    assert await x.make().post_metrics(x.token, ["abc", ""]) == []
    assert x.fake.requests["GET /2/tweets"] == 0
