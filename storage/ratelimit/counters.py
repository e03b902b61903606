"""A counter as one call sees it, and what the call says about it.

Shared by the Redis ledger and the per-process fallback, so both answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from storage.ratelimit.values import Decision

Mode = Literal["reserve", "peek", "charge", "refund"]
"""reserve: all or nothing; peek: the same check, charging nothing; charge: add without
checking (the work is done); refund: give back."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter in a call: its key, the amount to check or charge, its limit and window."""

    name: str
    key: str  # without the key prefix; a calendar day's label is appended
    limit: int
    amount: int
    window: int | None = None  # seconds of a moving window; None: a calendar day in `zone`
    zone: tzinfo = UTC


@dataclass(frozen=True, slots=True)
class Reading:
    """A counter after a call: used, seconds to wait (> 0 only if it refused), when it resets."""

    used: int
    retry_after: float
    reset_at: datetime | None


@dataclass(frozen=True, slots=True)
class Tally:
    """A whole call: whether every check passed, the clock that decided, and each counter."""

    allowed: bool
    now: datetime
    readings: list[Reading]


def decide(counters: Sequence[Counter], tally: Tally, *, charged: bool = False) -> Decision:
    """One Decision for a call: the refusing counter with the longest wait, or when allowed
    the counter with the smallest share left (comparable across units of any size)."""
    pairs = list(zip(counters, tally.readings, strict=True))
    if tally.allowed:
        c, r = min(pairs, key=lambda p: (p[0].limit - p[1].used) / max(p[0].limit, 1))
        return Decision(
            True,
            c.limit,
            max(c.limit - r.used, 0),
            0.0,
            r.reset_at,
            counter=c.name,
            charged_at=tally.now if charged else None,
        )
    c, r = max((p for p in pairs if p[1].retry_after > 0), key=lambda p: p[1].retry_after)
    return Decision(
        False, c.limit, max(c.limit - r.used, 0), r.retry_after, r.reset_at, counter=c.name
    )


def to_ms(instant: datetime) -> int:
    """Milliseconds since the epoch, exactly (no float rounding)."""
    return (instant - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """The inverse of `to_ms`."""
    return _EPOCH + timedelta(milliseconds=ms)
