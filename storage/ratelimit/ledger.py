"""The quota ledger: several counters checked and charged in one atomic script call
(and a chat message's admission and settlement, each one call too)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from redis.exceptions import NoScriptError

from storage.ratelimit.counters import Counter, Mode, Reading, Tally, from_ms, to_ms
from storage.ratelimit.deadline import stall_aware_timeout
from storage.ratelimit.fallback import OUTAGE_ERRORS, Outage
from storage.ratelimit.scripts import ADMIT, COUNTERS, FINISH, SLOTS, Script
from storage.ratelimit.windows import Period, candidate_periods, day_period
from storage.redis import RedisHandle

log = logging.getLogger(__name__)


class Ledger:
    """Runs the counters script against Redis, bounded in time (stall-aware), recording
    outages."""

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
        keys, counter_args = self._pack(counters, stamp)
        args: list[str | int] = [mode, to_ms(stamp) if stamp is not None else 0]
        raw = await self._call(COUNTERS, keys, [*args, *counter_args])
        return None if raw is None else _tally(raw[0] == b"1", raw[1], raw[2:])

    async def admit(
        self,
        *,
        slot_key: str,
        slot_token: str,
        ttl: float,
        messages: Sequence[Counter],
        tokens: Sequence[Counter],
        least: int,
    ) -> tuple[int, int, Tally, Tally] | None:
        """The `ADMIT` script: message rates, run slot, token reservation in one call.

        `tokens` carry the most to reserve; `least` is the fewest that will do. The stage
        reached (0 messages refused, 1 slot taken, 2 tokens refused, 3 admitted), the
        tokens granted, and each group's tally; None when Redis is unreachable.
        """
        msg_keys, msg_args = self._pack(messages, None)
        tok_keys, tok_args = self._pack(tokens, None)
        args: list[str | int] = [slot_token, max(int(ttl * 1000), 1), 5 + len(msg_args), least]
        raw = await self._call(
            ADMIT, [slot_key, *msg_keys, *tok_keys], [*args, *msg_args, *tok_args]
        )
        if raw is None:
            return None
        stage, split = int(raw[0]), 3 + 3 * len(messages)
        return (
            stage,
            int(raw[2]),
            _tally(stage > 0, raw[1], raw[3:split]),
            _tally(stage == 3, raw[1], raw[split:]),
        )

    async def finish(
        self,
        *,
        slot_key: str,
        slot_token: str,
        mode: Mode,
        counters: Sequence[Counter],
        stamp: datetime | None,
    ) -> bool:
        """The `FINISH` script: charge or refund a run's tokens and free its slot in one
        call. False when Redis is unreachable (nothing charged, the slot's ttl frees it)."""
        keys, counter_args = self._pack(counters, stamp)
        args: list[str | int] = [slot_token, mode, to_ms(stamp) if stamp is not None else 0]
        return await self._call(FINISH, [slot_key, *keys], [*args, *counter_args]) is not None

    async def slot(
        self, op: str, key: str, token: str, *, limit: int = 0, ttl: float = 0.0
    ) -> tuple[bool, float] | None:
        """The `SLOTS` script: claim or release one of `limit` leased holders of `key`.

        (claimed, seconds until a lease ends when refused); None when Redis is unreachable.
        """
        args: list[str | int] = [op, token, limit, max(int(ttl * 1000), 1)]
        raw = await self._call(SLOTS, [self._redis.key(key)], args)
        return None if raw is None else (raw[0] == b"1", int(raw[1]) / 1000)

    async def _call(
        self, script: Script, keys: Sequence[str], args: Sequence[str | int]
    ) -> list[bytes] | None:
        """One script call bounded in time; its reply's fields, or None (Redis down, or
        its clock over a day from ours)."""
        if self._outage.skip():
            return None
        client = self._redis.scripts
        try:
            # What bounds a call: this alone, over all that the client does inside it
            # (connecting, sending, reading): it has no socket timeouts, and no retries.
            # Stall-aware: a stall of this process is not an outage of Redis.
            async with stall_aware_timeout(self._call_timeout):
                try:
                    reply = await client.call("EVALSHA", script.sha, len(keys), *keys, *args)
                except NoScriptError:
                    reply = await client.call("EVAL", script.source, len(keys), *keys, *args)
        except OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            return None
        self._outage.recovered()
        if not isinstance(reply, bytes):  # every script replies with one string
            raise TypeError(f"{script.sha} replied {type(reply).__name__}, not a string")
        raw = reply.split()
        if raw[0] == b"-1":
            log.error("redis clock is over a day from this host's clock; ledger refused")
            return None
        return raw

    def _pack(
        self, counters: Sequence[Counter], stamp: datetime | None
    ) -> tuple[list[str], list[str | int]]:
        keys: list[str] = []
        args: list[str | int] = []
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


def _tally(allowed: bool, now: bytes, fields: Sequence[bytes]) -> Tally:
    readings = [
        Reading(int(used), int(retry) / 1000, from_ms(int(reset)) if reset != b"0" else None)
        for used, retry, reset in zip(fields[0::3], fields[1::3], fields[2::3], strict=True)
    ]
    return Tally(allowed, from_ms(int(now)), readings)
