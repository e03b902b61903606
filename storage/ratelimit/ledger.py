"""The quota ledger: several counters checked and charged in one atomic script call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from redis.exceptions import NoScriptError

from storage.ratelimit.counters import Counter, Mode, Reading, Tally, from_ms, to_ms
from storage.ratelimit.fallback import OUTAGE_ERRORS, Outage
from storage.ratelimit.scripts import COUNTERS
from storage.ratelimit.windows import Period, candidate_periods, day_period
from storage.redis import RedisHandle

log = logging.getLogger(__name__)


class Ledger:
    """Runs the counters script against Redis, bounded in time, recording outages."""

    def __init__(
        self,
        *,
        redis: RedisHandle,
        outage: Outage,
        call_timeout: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._redis = redis
        self._outage = outage
        self._call_timeout = call_timeout
        # This host's clock only lays out the calendar (which days exist and where they
        # start); which day it *is* is decided by Redis' clock inside the script.
        self._clock = clock

    async def run(
        self, mode: Mode, counters: Sequence[Counter], *, stamp: datetime | None = None
    ) -> Tally | None:
        """Check and/or charge every counter at once (see `scripts`).

        `stamp` (refunds only) is when the reservation was charged: its window entries
        are removed, and its calendar days refunded only while they last. None when Redis
        is unreachable (recorded: one warning, then later calls skip Redis for a while
        instead of each waiting) or its clock is over a day from ours.
        """
        if self._outage.skip():
            return None
        keys, args = self._pack(mode, counters, stamp)
        client = self._redis.client
        try:
            # What bounds a call: this timeout, over all that redis-py does inside it
            # (connecting, its socket timeouts, its retries with backoff).
            async with asyncio.timeout(self._call_timeout):
                try:
                    reply = await client.evalsha(COUNTERS.sha, len(keys), *keys, *args)  # type: ignore[misc]
                except NoScriptError:
                    reply = await client.eval(COUNTERS.source, len(keys), *keys, *args)  # type: ignore[misc]
        except OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            return None
        self._outage.recovered()
        raw = reply.split()
        if raw[0] == b"-1":
            log.error("redis clock is over a day from this host's clock; ledger refused")
            return None
        readings = [
            Reading(int(used), int(retry) / 1000, from_ms(int(reset)) if reset != b"0" else None)
            for used, retry, reset in zip(raw[2::3], raw[3::3], raw[4::3], strict=True)
        ]
        return Tally(raw[0] == b"1", from_ms(int(raw[1])), readings)

    def _pack(
        self, mode: Mode, counters: Sequence[Counter], stamp: datetime | None
    ) -> tuple[list[str], list[str | int]]:
        keys: list[str] = []
        args: list[str | int] = [mode, to_ms(stamp) if stamp is not None else 0]
        for c in counters:
            if c.window is not None:
                keys.append(self._redis.key(c.key))
                args += ("r", c.amount, c.limit, c.window * 1000)
                continue
            # A refund goes to the day it was charged in; anything else to today.
            periods: list[Period] = (
                [day_period(stamp, c.zone)]
                if stamp is not None
                else candidate_periods(self._clock(), c.zone)
            )
            keys += (self._redis.key(c.key, p.label) for p in periods)
            args += ("d", c.amount, c.limit, len(periods))
            for p in periods:
                args += (to_ms(p.start), to_ms(p.end))
        return keys, args
