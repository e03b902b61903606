"""`best time <platform>`: the next three slots an account's own history favours.

Every figure comes from stored snapshots (storage.schedule.first_day_views): each
recent post's views within its first 24 hours, grouped by the weekday and hour it
went out, in the requester's zone. A slot's figure is the mean of its posts, and
each suggestion says how many posts it rests on. Below MIN_POSTS posts in all the
answer is a plain "not enough history": nothing is extrapolated or invented.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agent.actions.accounts import resolve_account, shown
from agent.actions.base import ActionError, Outcome, normalize_platform
from agent.actions.schedule import requester_zone
from agent.actions.schedule_time import local_instant, show
from agent.context import ActionContext
from storage import schedule

# Fewer posts with first-day figures than this: no suggestion.
MIN_POSTS = 5
# How far back posts count (recent behaviour, not the account's whole life).
LOOKBACK = timedelta(days=180)
SUGGESTIONS = 3


@dataclass(frozen=True, slots=True)
class Slot:
    """One weekday-and-hour in the requester's zone, with what its posts got."""

    weekday: int  # Monday 0
    hour: int
    mean_views: float
    posts: int


def rank_slots(history: list[tuple[datetime, float]], zone: ZoneInfo) -> list[Slot]:
    """Slots by mean first-day views, best first (ties: more posts, then earlier in the week)."""
    grouped: dict[tuple[int, int], list[float]] = defaultdict(list)
    for published, views in history:
        local = published.astimezone(zone)
        grouped[(local.weekday(), local.hour)].append(views)
    slots = [
        Slot(weekday=w, hour=h, mean_views=sum(v) / len(v), posts=len(v))
        for (w, h), v in grouped.items()
    ]
    return sorted(slots, key=lambda s: (-s.mean_views, -s.posts, s.weekday, s.hour))


def next_start(slot: Slot, *, now: datetime, zone: ZoneInfo) -> datetime:
    """The slot's next start after `now` (a start skipped by a clock change: the week after)."""
    today = now.astimezone(zone).date()
    ahead = (slot.weekday - today.weekday()) % 7
    for weeks in range(3):
        day = today + timedelta(days=ahead + 7 * weeks)
        try:
            at = local_instant(day, time(slot.hour), zone)
        except ActionError:
            continue
        if at > now:
            return at
    raise AssertionError("a weekly slot always recurs within three weeks")


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A slot and its next start."""

    at: datetime
    slot: Slot


@dataclass(frozen=True, slots=True)
class BestTimes:
    """What an account's history says: `suggestions` soonest first, empty when fewer than
    MIN_POSTS of its `posts` have first-day figures."""

    account: str  # as chat shows it
    ref: str
    platform: str
    zone: ZoneInfo
    posts: int
    suggestions: list[Suggestion]


async def best_times(ctx: ActionContext, *, platform: str | None) -> BestTimes:
    """The next three best slots for the requester's account on `platform`."""
    plat = normalize_platform(ctx, platform)
    account = await resolve_account(ctx, None, platform=plat)
    zone, _ = await requester_zone(ctx)
    if zone is None:
        raise ActionError(
            "I need your time zone to name hours: set it with `timezone Area/City`"
            " (e.g. `timezone Europe/Paris`)."
        )
    now = datetime.now(UTC)
    history = await schedule.first_day_views(
        ctx.deps.pool, account_id=account.id, since=now - LOOKBACK
    )
    found = []
    if len(history) >= MIN_POSTS:
        found = [
            Suggestion(at=next_start(slot, now=now, zone=zone), slot=slot)
            for slot in rank_slots(history, zone)[:SUGGESTIONS]
        ]
    return BestTimes(
        account=shown(ctx, account),
        ref=account.ref,
        platform=account.platform,
        zone=zone,
        posts=len(history),
        suggestions=sorted(found, key=lambda s: s.at),
    )


async def suggest(ctx: ActionContext, *, platform: str | None) -> Outcome:
    """`best_times` as chat says it."""
    best = await best_times(ctx, platform=platform)
    name, zone = best.account, best.zone
    if not best.suggestions:
        return Outcome(
            f"Not enough history for {name}: {best.posts} recent post(s) with first-day"
            f" figures; I need at least {MIN_POSTS}. Ask for its `metrics` after each post"
            " and I will learn from them."
        )
    lines = [
        f"Best times to post on {name}, from the first-day views of its last"
        f" {best.posts} posts (times in {zone.key}):"
    ]
    for n, found in enumerate(best.suggestions, 1):
        at, slot = found.at, found.slot
        lines.append(
            f"{n}. {show(at, zone)}: posts at {at.astimezone(zone):%A} {slot.hour:02d}:00"
            f" averaged {slot.mean_views:,.0f} views in their first day"
            f" ({slot.posts} post{'s' if slot.posts != 1 else ''})"
        )
    return Outcome("\n".join(lines))
