"""Windows and periods: rate strings for moving windows, calendar days for ledgers."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime

import limits


@dataclass(frozen=True, slots=True)
class Rate:
    """A parsed rate: `capacity` per moving window of `window` seconds."""

    capacity: int
    window: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse `limits`' rate syntax ("20/minute", "10 per second", "100/5 minutes")."""
        try:
            item = limits.parse(text)
        except ValueError as exc:
            raise ValueError(f"not a rate limit: {text!r} (expected e.g. '20/minute')") from exc
        return cls(item.amount, item.get_expiry())


@dataclass(frozen=True, slots=True)
class Period:
    """A ledger period: [start, end) with a stable label used in the Redis key."""

    label: str
    start: datetime
    end: datetime


def day_period(instant: datetime, tz: tzinfo) -> Period:
    """The calendar day in `tz` that contains `instant` (23 or 25 h long on DST days)."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return _period_of(instant.astimezone(tz).date(), tz)


@functools.lru_cache(maxsize=256)
def _period_of(day: date, tz: tzinfo) -> Period:
    """The day's period in `tz` (cached: a day's bounds never change, and every agent
    message asks for three days of two counters: 10 µs a counter uncached, 3 cached)."""
    start = datetime.combine(day, dtime(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), dtime(0), tzinfo=tz)
    return Period(day.isoformat(), start.astimezone(UTC), end.astimezone(UTC))


def candidate_periods(instant: datetime, tz: tzinfo) -> list[Period]:
    """Yesterday, today and tomorrow around `instant` in `tz`.

    The script picks the one containing Redis' own clock: this process computes the
    calendar (time zones, DST) and Redis decides which day it is, so a replica whose
    clock is minutes off still charges the same day's ledger as the others.
    """
    today = day_period(instant, tz)
    day = date.fromisoformat(today.label)
    return [_period_of(day - timedelta(days=1), tz), today, _period_of(day + timedelta(days=1), tz)]
