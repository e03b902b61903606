"""While Redis is down: outage tracking, and a per-process limiter for the limits that fail open.

Chat limits (messages, LLM tokens, platform call pacing) fail open to this process'
own counts, so a user is still capped per replica; platform quotas fail closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import ClusterDownError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage.ratelimit.counters import Counter, Reading, Tally
from storage.ratelimit.windows import day_period

log = logging.getLogger(__name__)

# Failures that mean "Redis is unreachable right now", as opposed to a bug in a script.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,  # a failover left us talking to a replica
    OutOfMemoryError,  # Redis refuses writes: as good as down for a limiter
    ClusterDownError,
    OSError,
    TimeoutError,  # also our own per-call bound
)


class Outage:
    """Tracks one Redis outage: one warning when it starts, one info when it ends.

    While down, callers skip Redis for `probe_interval` seconds at a time instead of
    each paying a timeout, then one call probes again.
    """

    def __init__(self, probe_interval: float) -> None:
        self.down = False
        self._probe_interval = probe_interval
        self._next_probe = 0.0

    def skip(self) -> bool:
        return self.down and time.monotonic() < self._next_probe

    def failed(self, exc: BaseException) -> None:
        self._next_probe = time.monotonic() + self._probe_interval
        if not self.down:
            self.down = True
            log.warning(
                "redis unreachable: chat limits fall back to this process, "
                "quota reservations are refused until it returns",
                extra={"error": type(exc).__name__},
            )

    def recovered(self) -> None:
        if self.down:
            self.down = False
            log.info("redis reachable again: limits are shared again")


class LocalLimits:
    """The script's semantics on this process' own counts and clock (fail open, still capped).

    `limits`' in-memory moving window does the moving windows; calendar days are a dict.
    """

    def __init__(self) -> None:
        self._windows = MovingWindowRateLimiter(MemoryStorage())
        self._days: dict[tuple[str, str], tuple[datetime, int]] = {}

    def hit(self, counters: Sequence[Counter]) -> Tally:
        """Reserve on moving windows: every counter or none."""
        items = [(limits.RateLimitItemPerSecond(c.limit, c.window or 1), c) for c in counters]
        # Test every counter before charging any, so a refusal charges none (no await in
        # between, so this is atomic within the event loop).
        allowed = all(self._windows.test(i, c.key, cost=c.amount) for i, c in items)
        if allowed:
            for item, c in items:
                self._windows.hit(item, c.key, cost=c.amount)
        readings = []
        for item, c in items:
            reset, remaining = self._windows.get_window_stats(item, c.key)
            refused = not allowed and remaining < c.amount
            retry = max(reset - time.time(), 0.001) if refused else 0.0
            readings.append(Reading(c.limit - remaining, retry, datetime.fromtimestamp(reset, UTC)))
        return Tally(allowed, datetime.now(UTC), readings)

    def days(self, mode: Literal["peek", "charge"], counters: Sequence[Counter]) -> Tally:
        """Peek at (with the reserve check) or charge calendar-day counters."""
        now = datetime.now(UTC)
        if mode == "charge":  # forget days that have ended
            self._days = {k: v for k, v in self._days.items() if v[0] > now}
        allowed = True
        readings = []
        for c in counters:
            period = day_period(now, c.zone)
            key = (c.key, period.label)
            used = self._days.get(key, (period.end, 0))[1]
            retry = 0.0
            if mode == "charge":
                used += c.amount
                self._days[key] = (period.end, used)
            elif c.amount > 0 and used + c.amount > c.limit:
                allowed = False
                retry = max((period.end - now).total_seconds(), 1.0)
            readings.append(Reading(used, retry, period.end))
        return Tally(allowed, now, readings)
