"""Time phrases to UTC instants: zones, DST gaps and folds, the scheduling window.

The oracle for wall-clock times is brute force, independent of `local_instant`: every
UTC instant whose reading in the zone is that wall-clock time, found by trying each
offset the zone uses around that day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.actions.base import ActionError
from agent.actions.schedule_time import (
    NeedZone,
    check_window,
    local_instant,
    looks_like_time,
    parse_when,
    show,
    zone_named,
)

ZONES = sorted(
    z for z in available_timezones() if "/" in z and not z.startswith(("Etc", "SystemV"))
)
DST_ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a 30-minute shift
    "America/Santiago",
    "Pacific/Auckland",
    "Europe/London",
    "America/St_Johns",  # a :30 offset
]


def readings(naive: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every UTC instant that reads as `naive` in `zone` (0, 1 or 2 of them)."""
    offsets = set()
    for hours in range(-48, 49, 3):
        probe = (naive + timedelta(hours=hours)).replace(tzinfo=zone)
        offsets.add(probe.utcoffset())
    found = set()
    for offset in offsets:
        assert offset is not None
        utc = (naive - offset).replace(tzinfo=UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == naive:
            found.add(utc)
    return sorted(found)


@cache
def transitions(zone_name: str, year: int) -> list[datetime]:
    """The UTC instants in `year` where the zone's offset changes (hourly scan, then minute)."""
    zone = ZoneInfo(zone_name)
    out: list[datetime] = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    before = at.astimezone(zone).utcoffset()
    while at < end:
        nxt = at + timedelta(hours=1)
        offset = nxt.astimezone(zone).utcoffset()
        if offset != before:
            minute = at
            while minute.astimezone(zone).utcoffset() == before:
                minute += timedelta(minutes=1)
            out.append(minute)
            before = offset
        at = nxt
    return out


def check(naive: datetime, zone: ZoneInfo) -> None:
    expected = readings(naive, zone)
    if not expected:
        with pytest.raises(ActionError, match="does not exist"):
            local_instant(naive.date(), naive.time(), zone)
        return
    got = local_instant(naive.date(), naive.time(), zone)
    # The documented rule: the first of two readings; and it reads back as asked.
    assert got == expected[0]
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert got.astimezone(zone).replace(tzinfo=None) == naive


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    when=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31)),
)
def test_any_zone_any_time_runs_at_its_instant(zone: str, when: datetime) -> None:
    check(when.replace(second=0, microsecond=0), ZoneInfo(zone))


@settings(max_examples=400, deadline=None)
@given(
    zone=st.sampled_from(DST_ZONES),
    year=st.integers(2026, 2029),
    which=st.integers(0, 1),
    minutes=st.integers(-150, 150),
)
def test_times_around_dst_changes(zone: str, year: int, which: int, minutes: int) -> None:
    """Gaps are refused, folds resolve to the first reading, everything else is exact."""
    tz = ZoneInfo(zone)
    changes = transitions(zone, year)
    change = changes[which % len(changes)]
    # A wall-clock time near the change, as a person would type it.
    naive = (change + timedelta(minutes=minutes)).astimezone(tz).replace(tzinfo=None)
    check(naive, tz)
    # ... and the same reading shifted by the change's size lands in the gap or the fold.
    before = (change - timedelta(minutes=1)).astimezone(tz).utcoffset()
    after = change.astimezone(tz).utcoffset()
    assert before is not None and after is not None
    check(naive + (after - before), tz)


def test_gap_and_fold_examples() -> None:
    paris = ZoneInfo("Europe/Paris")
    with pytest.raises(ActionError, match=r"02:30 does not exist.*e\.g\. 03:30"):
        local_instant(date(2027, 3, 28), time(2, 30), paris)
    # 02:30 on 31 Oct 2027 happens twice; the first is still summer time (UTC+2).
    assert local_instant(date(2027, 10, 31), time(2, 30), paris) == datetime(
        2027, 10, 31, 0, 30, tzinfo=UTC
    )


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday; 13:00 in Paris


def test_phrases() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert parse_when(["in", "2h"], now=NOW, zone=None).at == NOW + timedelta(hours=2)
    assert parse_when(["in", "90", "minutes"], now=NOW, zone=None).at == NOW + timedelta(minutes=90)
    assert parse_when("at 18:00 tomorrow".split(), now=NOW, zone=paris).at == datetime(
        2026, 12, 2, 17, 0, tzinfo=UTC
    )
    # No day: the next 18:00 (today, still ahead); 09:00 has passed, so tomorrow.
    assert parse_when(["at", "18:00"], now=NOW, zone=paris).at == datetime(
        2026, 12, 1, 17, 0, tzinfo=UTC
    )
    assert parse_when(["at", "9am"], now=NOW, zone=paris).at == datetime(
        2026, 12, 2, 8, 0, tzinfo=UTC
    )
    friday = parse_when("on friday 09:30 America/New_York".split(), now=NOW, zone=paris)
    assert friday.at == datetime(2026, 12, 4, 14, 30, tzinfo=UTC)
    assert friday.zone == ZoneInfo("America/New_York")
    assert parse_when(["2026-12-24T18:00"], now=NOW, zone=paris).at == datetime(
        2026, 12, 24, 17, 0, tzinfo=UTC
    )
    assert parse_when(["2026-12-24T18:00+00:00"], now=NOW, zone=None).at == datetime(
        2026, 12, 24, 18, 0, tzinfo=UTC
    )
    with pytest.raises(NeedZone, match="timezone Area/City"):
        parse_when("at 18:00 tomorrow".split(), now=NOW, zone=None)
    with pytest.raises(ActionError, match="already passed"):
        parse_when("at 10:00 today".split(), now=NOW, zone=paris)
    with pytest.raises(ActionError, match="not a time zone"):
        parse_when("at 10:00 Mars/Olympus".split(), now=NOW, zone=None)
    assert looks_like_time("at 18:00 tomorrow".split())
    assert not looks_like_time("in the sun".split())
    assert not looks_like_time("at the beach".split())


def test_window_and_display() -> None:
    paris = ZoneInfo("Europe/Paris")
    past = parse_when(["2026-11-30T10:00"], now=NOW, zone=paris)
    with pytest.raises(ActionError, match="in the past"):
        check_window(past, now=NOW, max_days=90)
    far = parse_when(["in", "91d"], now=NOW, zone=paris)
    with pytest.raises(ActionError, match="more than 90 days"):
        check_window(far, now=NOW, max_days=90)
    check_window(parse_when(["in", "89d"], now=NOW, zone=paris), now=NOW, max_days=90)
    shown = show(datetime(2026, 12, 2, 17, 0, tzinfo=UTC), paris)
    assert shown == "Wed 02 Dec 2026 18:00 Europe/Paris (17:00 UTC)"


@pytest.mark.parametrize("name", ["America", "Etc", "Europe/", "../etc/passwd", "Nowhere/City"])
def test_a_name_that_is_no_zone_is_a_clear_refusal(name: str) -> None:
    # A folder of the zone database (`America`) is not a zone either.
    with pytest.raises(ActionError, match="is not a time zone"):
        zone_named(name)
