"""Rate limits: wait before X says 429 when the reset is near, refuse early when it is far."""

from __future__ import annotations

import pytest

from integrations.errors import RateLimited
from integrations.x.pacing import Clock, RatePacer, Window, window_from_headers
from tests.fakes.x import FakeClock
from tests.integrations.x.conftest import XEnv

ME = "GET /2/users/me"


async def test_a_spent_window_with_a_near_reset_is_waited_for(x: XEnv) -> None:
    platform = x.make()
    x.fake.set_window(ME, remaining=1, reset_in=3)
    await platform.profile(x.token)  # takes the last call; the answer says 0 left
    await platform.profile(x.token)  # waits for the reset instead of meeting a 429
    assert x.clock.sleeps == [pytest.approx(4, abs=1)]  # the reset, and a second for skew
    assert x.fake.requests[ME] == 2 and x.fake.windows[ME].remaining < x.fake.windows[ME].limit


async def test_a_spent_window_with_a_far_reset_is_refused_before_sending(x: XEnv) -> None:
    platform = x.make()
    x.fake.set_window(ME, remaining=1, reset_in=600)
    await platform.profile(x.token)
    with pytest.raises(RateLimited) as info:
        await platform.profile(x.token)
    assert info.value.retry_after == pytest.approx(600, abs=2) and info.value.retryable
    assert "11 min" in str(info.value)  # 600 s and a second, rounded up
    assert x.fake.requests[ME] == 1 and x.clock.sleeps == []


async def test_a_429_carries_the_reset_and_the_next_call_stays_home(x: XEnv) -> None:
    platform = x.make()
    x.fake.exhaust(ME, reset_in=120)
    with pytest.raises(RateLimited) as info:
        await platform.profile(x.token)
    assert info.value.status == 429 and info.value.retry_after == pytest.approx(120, abs=1)
    with pytest.raises(RateLimited):
        await platform.profile(x.token)
    assert x.fake.requests[ME] == 1


async def test_windows_are_per_endpoint(x: XEnv) -> None:
    platform = x.make()
    x.fake.exhaust("GET /2/tweets", reset_in=900)
    post = x.fake.add_post(x.user, public={"like_count": 1})
    with pytest.raises(RateLimited):
        await platform.post_metrics(x.token, [post.id])
    assert (await platform.profile(x.token)).external_id == x.user.id


async def test_concurrent_callers_share_what_is_left() -> None:
    clock = FakeClock(1000.0)
    pacer = RatePacer(clock=Clock(now=clock.now, sleep=clock.sleep), max_wait=5)
    pacer.after(
        "k",
        {"x-rate-limit-limit": "10", "x-rate-limit-remaining": "2", "x-rate-limit-reset": "1004"},
    )
    await pacer.before("k")
    await pacer.before("k")
    await pacer.before("k")  # the third waits for the reset
    assert clock.sleeps == [5]  # to the reset, plus a second for clock skew
    assert pacer.window("k") is None  # a fresh window: the next answer will tell


def test_unreadable_headers_are_ignored() -> None:
    assert window_from_headers({"x-rate-limit-remaining": "3"}) is None
    assert (
        window_from_headers(
            {"x-rate-limit-limit": "a", "x-rate-limit-remaining": "1", "x-rate-limit-reset": "2"}
        )
        is None
    )
    assert window_from_headers(
        {
            "x-rate-limit-limit": "15",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": "1700000000",
        }
    ) == Window(15, 0, 1700000000.0)
