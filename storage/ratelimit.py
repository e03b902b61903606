"""Rate limits and quota ledgers in Redis: one atomic Lua script per decision.

Two mechanisms:

* **Sliding log** for request rates (chat messages per user and per workspace,
  calls per second per platform API, Instagram publishes per account per 24 h):
  a Redis list of the admission times still inside the window, newest first. A
  request is admitted while fewer than L are, so no window of that length ever
  holds more than L admissions. Several limits are checked and charged in one
  script, so a request refused by one limit is charged to none.
* **Counter ledger** for daily quotas (LLM tokens per user and per workspace per
  UTC day, YouTube quota units and uploads per Pacific day): one counter per period,
  reserved atomically (refused without charging when it would exceed), refunded,
  expired a day after the period ends.

Every script reads the clock with Redis `TIME`, so replicas whose clocks disagree
make the same decision. Why not `limits`' Redis strategies: its moving window is
exact but stamps entries with the *client's* `time.time()` (skewed replicas would
disagree), its sliding-window counter is an approximation that can admit more than
L in some windows, and neither charges several limits atomically nor keeps a
period ledger with refunds. We still use `limits` for what it does well: parsing
rate strings ("20/minute") and the in-process moving window used as the fail-open
fallback when Redis is unreachable.

Redis down: chat-rate checks (messages, LLM budget, platform call pacing) fail
*open* to a per-process limiter, logging one warning per outage and recovering by
themselves; hard external quotas (YouTube, Instagram publishing) fail *closed*
with a short retry_after. Every Redis call is bounded by a short timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import ClusterDownError, NoScriptError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage.redis import RedisHandle

log = logging.getLogger(__name__)

PACIFIC = ZoneInfo("America/Los_Angeles")
"""YouTube Data API quota resets at midnight Pacific time."""

# Failures that mean "Redis is unreachable right now", as opposed to a bug in a script.
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,  # a failover left us talking to a replica
    OutOfMemoryError,  # Redis refuses writes: as good as down for a limiter
    ClusterDownError,
    OSError,
    TimeoutError,
)


# --------------------------------------------------------------------------------------
# Public value types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may this happen now?", with what is left and when to retry."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds; 0.0 when allowed
    reset_at: datetime | None

    def refusal_message(self, what: str) -> str:
        """A chat-ready sentence for a refusal, e.g. "Message limit reached (20 per minute)..."."""
        return f"{what} limit reached ({self.limit}); try again in {format_wait(self.retry_after)}."


def format_wait(seconds: float) -> str:
    """A short human duration for "try again in ...": "3 s", "2 min", "5 h 10 min"."""
    whole = max(math.ceil(seconds), 1)
    if whole < 60:
        return f"{whole} s"
    minutes = math.ceil(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget as the `quota` command shows it."""

    name: str
    used: int
    limit: int
    remaining: int
    reset_at: datetime | None


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """Every limit, built from `bot.settings` at assembly."""

    user_messages: str
    workspace_messages: str
    platform_calls: str
    user_llm_tokens_per_day: int
    workspace_llm_tokens_per_day: int
    youtube_daily_units: int
    youtube_upload_cost_units: int
    youtube_daily_uploads: int
    instagram_publishes_per_day: int


class LimiterUnavailable(Exception):
    """Redis is unreachable and the answer cannot be estimated (e.g. the quota report)."""

    user_message = "Quota figures are unavailable right now; try again in a moment."


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
    local_day = instant.astimezone(tz).date()
    return _period_of(local_day, tz)


def _period_of(day: date, tz: tzinfo) -> Period:
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


# --------------------------------------------------------------------------------------
# Lua
# --------------------------------------------------------------------------------------

# KEYS: one list per limit. ARGV: peek (0/1), then per limit: capacity, window_ms.
# Returns one space-separated string (cheaper to parse than a nested reply):
# "allowed count_1 retry_ms_1 newest_ms_1 count_2 ...", counts after the call.
# Each list holds the admission times (ms) still inside the window, newest first:
# expired entries are popped from the tail as they age out (each entry is pushed and
# popped once, so this is amortised O(1)), the length is the count in the window, and
# when it has reached capacity the tail is the entry that must expire before the next
# admission. Unlike `limits`' moving window, no window ever holds more than capacity
# admissions whatever the callers' clocks say, since the only clock is Redis `TIME`.
_SLIDING_LOG = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local peek = ARGV[1] == '1'
local n = #KEYS
local allowed = 1
local counts, retries, newest = {}, {}, {}
for i = 1, n do
  local key = KEYS[i]
  local cap = tonumber(ARGV[2 * i])
  local horizon = now - tonumber(ARGV[2 * i + 1])
  local oldest = nil
  local tail = redis.call('LINDEX', key, -1)
  while tail do
    local ts = tonumber(tail)
    if ts > horizon then oldest = ts; break end
    redis.call('RPOP', key)
    tail = redis.call('LINDEX', key, -1)
  end
  local len = 0
  if oldest then len = redis.call('LLEN', key) end
  counts[i] = len
  retries[i] = 0
  newest[i] = 0
  if len >= cap then
    allowed = 0
    -- more than cap entries only if the capacity was lowered: the gate is the cap-th newest
    local gate = oldest
    if len > cap then gate = tonumber(redis.call('LINDEX', key, cap - 1)) end
    retries[i] = math.max(gate - horizon, 1)
  end
end
if allowed == 1 and not peek then
  for i = 1, n do
    redis.call('LPUSH', KEYS[i], now)
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i + 1]))
    counts[i] = counts[i] + 1
    newest[i] = now
  end
else
  for i = 1, n do
    if counts[i] > 0 then newest[i] = tonumber(redis.call('LINDEX', KEYS[i], 0)) end
  end
end
local out = {allowed}
for i = 1, n do
  out[#out + 1] = counts[i]
  out[#out + 1] = retries[i]
  out[#out + 1] = newest[i]
end
return table.concat(out, ' ')
"""

# KEYS: counters, period-major: KEYS[(p-1)*m + c] is counter c in candidate period p.
# ARGV: mode ('reserve' | 'charge' | 'peek'), m, valid_until_s (0 = always),
#       then 3 periods (start_s, end_s), then per counter: amount, limit.
# reserve: charge all counters only if none would exceed its limit.
# charge: add unconditionally (negative amounts refund, floored at 0).
# Returns: {allowed, period_index, end_s, now_s, used_1 .. used_m} (used after the call),
#          or {-1, now_s} when no candidate period contains Redis' clock.
_LEDGER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode = ARGV[1]
local m = tonumber(ARGV[2])
local valid_until = tonumber(ARGV[3])
local p = 0
for i = 1, 3 do
  if now >= tonumber(ARGV[2 + 2 * i]) and now < tonumber(ARGV[3 + 2 * i]) then p = i end
end
if p == 0 then return {-1, math.floor(now)} end
local period_end = tonumber(ARGV[3 + 2 * p])
local base = 10
local used = {}
local allowed = 1
for c = 1, m do
  local key = KEYS[(p - 1) * m + c]
  used[c] = tonumber(redis.call('GET', key) or '0')
  local amount = tonumber(ARGV[base + 2 * (c - 1)])
  local limit = tonumber(ARGV[base + 2 * (c - 1) + 1])
  if mode == 'reserve' and amount > 0 and used[c] + amount > limit then allowed = 0 end
end
if mode ~= 'peek' and allowed == 1 and (valid_until == 0 or now < valid_until) then
  for c = 1, m do
    local key = KEYS[(p - 1) * m + c]
    local amount = tonumber(ARGV[base + 2 * (c - 1)])
    if amount ~= 0 then
      local after = used[c] + amount
      if after < 0 then after = 0 end
      redis.call('SET', key, after)
      -- keep a day past the period so late reports and refunds still see it
      redis.call('EXPIREAT', key, period_end + 86400)
      used[c] = after
    end
  end
end
local out = {allowed, p, period_end, math.floor(now)}
for c = 1, m do out[#out + 1] = used[c] end
return out
"""


@dataclass(frozen=True, slots=True)
class _Lua:
    source: str
    sha: str

    @classmethod
    def of(cls, source: str) -> _Lua:
        return cls(source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


SLIDING_LOG = _Lua.of(_SLIDING_LOG)
LEDGER = _Lua.of(_LEDGER)


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    """A parsed rate: `capacity` per `window` seconds, with a human label."""

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

    @property
    def window_ms(self) -> int:
        return self.window * 1000

    @property
    def per(self) -> str:
        names = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
        if self.window in names:
            return names[self.window]
        for size, name in sorted(names.items(), reverse=True):
            if self.window % size == 0:
                return f"{self.window // size} {name}s"
        return f"{self.window} seconds"


def _ms_to_dt(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class _Outage:
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


class _Deadlines:
    """A hard time bound on Redis calls, enforced by one sweeping timer for all of them.

    The client's 0.25 s socket timeouts bound each attempt, but redis-py retries, so a
    Redis that stops answering could hold a call for over a second. `asyncio.timeout`
    per call would bound it, but arming and cancelling a timer on every decision costs
    as much as the rest of our Python path; here one timer runs only while calls are
    in flight and cancels those past their deadline (enforced within 1.5x the bound).
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._inflight: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self) -> asyncio.Task[Any]:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always called from a task
            raise RuntimeError("Budgets must be used from an asyncio task")
        loop = asyncio.get_running_loop()
        self._inflight[task] = (loop.time() + self._timeout, task.cancelling())
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_later(self._timeout / 2, self._sweep, loop)
        return task

    def exit(self, task: asyncio.Task[Any]) -> None:
        self._inflight.pop(task, None)
        self._expired.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """True if the CancelledError came from our deadline (and then it is absorbed)."""
        if task not in self._expired:
            return False
        _, cancelling = self._inflight.get(task, (0.0, 0))
        # Absorb our own cancel; if someone else also cancelled, theirs stands.
        return task.uncancel() <= cancelling

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return
        now = loop.time()
        for task, (deadline, _) in list(self._inflight.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = (
            loop.call_later(self._timeout / 2, self._sweep, loop) if self._inflight else None
        )


class _LocalLimits:
    """Per-process fallback while Redis is down (fail open, but still cap each user).

    `limits`' in-memory moving window does exactly this job; the LLM ledger is a dict.
    """

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._tokens: dict[tuple[str, str], int] = {}

    def hit(self, rates: Sequence[tuple[Rate, str]]) -> Decision:
        items = [(limits.RateLimitItemPerSecond(r.capacity, r.window), key) for r, key in rates]
        # Test every limit before charging any, so a refusal charges none (no await in
        # between, so this is atomic within the event loop).
        refused = [
            (r, i, k)
            for (r, _), (i, k) in zip(rates, items, strict=True)
            if not self._limiter.test(i, k)
        ]
        if refused:
            retry = 0.0
            for _rate, item, key in refused:
                reset, _ = self._limiter.get_window_stats(item, key)
                retry = max(retry, reset - time.time())
            rate = refused[0][0]
            return Decision(False, rate.capacity, 0, max(retry, 0.001), None)
        for item, key in items:
            self._limiter.hit(item, key)
        best: Decision | None = None
        for (rate, _), (item, key) in zip(rates, items, strict=True):
            reset, remaining = self._limiter.get_window_stats(item, key)
            d = Decision(True, rate.capacity, remaining, 0.0, datetime.fromtimestamp(reset, UTC))
            if best is None or d.remaining < best.remaining:
                best = d
        assert best is not None
        return best

    def tokens_used(self, period: str, key: str) -> int:
        return self._tokens.get((period, key), 0)

    def charge_tokens(self, period: str, key: str, tokens: int) -> None:
        self._tokens = {k: v for k, v in self._tokens.items() if k[0] == period}
        self._tokens[(period, key)] = self.tokens_used(period, key) + tokens


# --------------------------------------------------------------------------------------
# Budgets
# --------------------------------------------------------------------------------------


class Budgets:
    """Every limit the bot enforces, as one object the conversation and integrations share."""

    def __init__(
        self,
        *,
        redis: RedisHandle,
        policy: LimitPolicy,
        call_timeout: float = 0.5,
        outage_probe_interval: float = 1.0,
        closed_retry_after: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._redis = redis
        # This host's clock only lays out the calendar (which days exist and where
        # they start); which day it *is* is decided by Redis' clock inside the script.
        self._clock = clock or (lambda: datetime.now(UTC))
        self.policy = policy
        self._user_rate = Rate.parse(policy.user_messages)
        self._workspace_rate = Rate.parse(policy.workspace_messages)
        self._platform_rate = Rate.parse(policy.platform_calls)
        self._closed_retry_after = closed_retry_after
        self._outage = _Outage(outage_probe_interval)
        self._deadlines = _Deadlines(call_timeout)
        self._local = _LocalLimits()
        self._platform_keys: dict[str, str] = {}

    @property
    def redis_down(self) -> bool:
        """True between the first failed Redis call and the next successful one."""
        return self._outage.down

    # -- plumbing ------------------------------------------------------------------------

    async def _run(self, script: _Lua, keys: Sequence[str], args: Sequence[Any]) -> Any | None:
        """Run a script (by SHA, loading it on first use) within the call timeout.

        None when Redis is unreachable; the outage is recorded (one warning) and, for a
        while, later calls skip Redis instead of each waiting for a timeout.
        """
        outage = self._outage
        if outage.down and outage.skip():
            return None
        client = self._redis.client
        task = self._deadlines.enter()
        try:
            try:
                reply = await client.evalsha(script.sha, len(keys), *keys, *args)  # type: ignore[misc]
            except NoScriptError:
                reply = await client.eval(script.source, len(keys), *keys, *args)  # type: ignore[misc]
        except _OUTAGE_ERRORS as exc:
            outage.failed(exc)
            return None
        except asyncio.CancelledError:
            if not self._deadlines.expired(task):
                raise  # someone else cancelled the caller: let it through
            outage.failed(TimeoutError())
            return None
        finally:
            self._deadlines.exit(task)
        if outage.down:
            outage.recovered()
        return reply

    async def _sliding(
        self, rates: Sequence[tuple[Rate, str]], *, peek: bool = False
    ) -> tuple[Decision, list[tuple[int, datetime | None]]] | None:
        """Check (and unless peeking, charge) several sliding-log limits atomically."""
        keys = [key for _, key in rates]
        args: list[Any] = ["1" if peek else "0"]
        for rate, _ in rates:
            args += (rate.capacity, rate.window_ms)
        reply = await self._run(SLIDING_LOG, keys, args)
        if reply is None:
            return None
        raw = reply.split()
        allowed = raw[0] == b"1"
        per_limit: list[tuple[int, datetime | None]] = []
        decision: Decision | None = None
        for i, (rate, _) in enumerate(rates):
            count, retry_ms, newest_ms = (
                int(raw[3 * i + 1]),
                int(raw[3 * i + 2]),
                int(raw[3 * i + 3]),
            )
            reset_at = _ms_to_dt(newest_ms + rate.window_ms) if count else None
            per_limit.append((count, reset_at))
            if allowed:
                remaining = rate.capacity - count
                if decision is None or remaining < decision.remaining:
                    decision = Decision(True, rate.capacity, max(remaining, 0), 0.0, reset_at)
            elif decision is None or retry_ms / 1000 > decision.retry_after:
                decision = Decision(False, rate.capacity, 0, retry_ms / 1000, reset_at)
        assert decision is not None
        return decision, per_limit

    async def _ledger(
        self,
        mode: str,
        *,
        tz: tzinfo,
        names: Sequence[str],
        amounts: Sequence[int],
        caps: Sequence[int],
        valid_until: datetime | None = None,
    ) -> tuple[bool, Period, list[int]] | None:
        periods = candidate_periods(self._clock(), tz)
        keys = [self._redis.key(*name.split("|"), p.label) for p in periods for name in names]
        args: list[Any] = [mode, len(names), int(valid_until.timestamp()) if valid_until else 0]
        for p in periods:
            args += [int(p.start.timestamp()), int(p.end.timestamp())]
        for amount, cap in zip(amounts, caps, strict=True):
            args += [amount, cap]
        reply = await self._run(LEDGER, keys, args)
        if reply is None:
            return None
        raw = list(reply)
        if int(raw[0]) == -1:
            # Redis' clock is more than a day away from ours: refuse rather than guess.
            log.error("redis clock is far from this host's clock; ledger refused")
            return None
        return int(raw[0]) == 1, periods[int(raw[1]) - 1], [int(x) for x in raw[4:]]

    # Keys: a hash tag ({...}) keeps every key one script touches in one cluster slot.
    def _user_msg_key(self, workspace_id: int, chat_user_id: int) -> str:
        return self._redis.key("rl", f"{{w{workspace_id}}}", "msg", f"u{chat_user_id}")

    def _workspace_msg_key(self, workspace_id: int) -> str:
        return self._redis.key("rl", f"{{w{workspace_id}}}", "msg")

    @staticmethod
    def _llm_names(workspace_id: int, chat_user_id: int) -> list[str]:
        return [f"llm|{{w{workspace_id}}}|u{chat_user_id}", f"llm|{{w{workspace_id}}}"]

    _YT_NAMES = ("quota|{youtube}|units", "quota|{youtube}|uploads")

    def _closed(self, limit: int) -> Decision:
        return Decision(False, limit, 0, self._closed_retry_after, None)

    # -- chat ----------------------------------------------------------------------------

    async def check_message(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        """Admit one chat message against the per-user and per-workspace rates.

        Fails open to a per-process limiter when Redis is unreachable.
        """
        user_key = self._user_msg_key(workspace_id, chat_user_id)
        ws_key = self._workspace_msg_key(workspace_id)
        rates = [(self._user_rate, user_key), (self._workspace_rate, ws_key)]
        result = await self._sliding(rates)
        if result is None:
            return self._local.hit(rates)
        return result[0]

    async def check_llm_budget(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        """Is there LLM token budget left today (UTC) for this user and workspace?"""
        caps = [self.policy.user_llm_tokens_per_day, self.policy.workspace_llm_tokens_per_day]
        names = self._llm_names(workspace_id, chat_user_id)
        result = await self._ledger("peek", tz=UTC, names=names, amounts=[0, 0], caps=caps)
        if result is None:
            period = day_period(self._clock(), UTC)
            used = [self._local.tokens_used(period.label, n) for n in names]
        else:
            _, period, used = result
        return _budget_decision(used, caps, period.end)

    async def charge_llm_tokens(self, *, workspace_id: int, chat_user_id: int, tokens: int) -> None:
        """Record tokens a model call used (always charged: they are already spent)."""
        if tokens <= 0:
            return
        names = self._llm_names(workspace_id, chat_user_id)
        caps = [self.policy.user_llm_tokens_per_day, self.policy.workspace_llm_tokens_per_day]
        result = await self._ledger(
            "charge", tz=UTC, names=names, amounts=[tokens, tokens], caps=caps
        )
        if result is None:
            period = day_period(self._clock(), UTC)
            for name in names:
                self._local.charge_tokens(period.label, name, tokens)

    # -- platform quotas (fail closed) ---------------------------------------------------

    async def reserve_youtube(self, *, units: int, uploads: int = 0) -> Decision:
        """Reserve YouTube quota units (and uploads) from today's ledger (Pacific day).

        Refused without charging anything when it would exceed either budget; refused
        with a short retry_after when Redis is unreachable.
        """
        if units < 0 or uploads < 0:
            raise ValueError("units and uploads must be >= 0")
        caps = [self.policy.youtube_daily_units, self.policy.youtube_daily_uploads]
        result = await self._ledger(
            "reserve", tz=PACIFIC, names=self._YT_NAMES, amounts=[units, uploads], caps=caps
        )
        if result is None:
            return self._closed(caps[0])
        allowed, period, used = result
        if allowed:
            return Decision(True, caps[0], max(caps[0] - used[0], 0), 0.0, period.end)
        retry = max((period.end - self._clock()).total_seconds(), 1.0)
        return Decision(False, caps[0], max(caps[0] - used[0], 0), retry, period.end)

    async def refund_youtube(
        self, *, units: int, uploads: int = 0, reservation: Decision | None = None
    ) -> None:
        """Give back units reserved for work that did not reach YouTube.

        Pass the reservation's Decision to skip the refund when its day has already
        ended (refunding today for yesterday's charge would over-grant today).
        Best effort: a refund lost to a Redis outage only makes the ledger conservative.
        """
        if units < 0 or uploads < 0:
            raise ValueError("units and uploads must be >= 0")
        caps = [self.policy.youtube_daily_units, self.policy.youtube_daily_uploads]
        valid_until = reservation.reset_at if reservation is not None else None
        await self._ledger(
            "charge",
            tz=PACIFIC,
            names=self._YT_NAMES,
            amounts=[-units, -uploads],
            caps=caps,
            valid_until=valid_until,
        )

    def _instagram_rate(self, platform_limit: int | None) -> Rate:
        cap = self.policy.instagram_publishes_per_day
        if platform_limit is not None and platform_limit > 0:
            cap = min(cap, platform_limit)
        return Rate(cap, 86400)

    def _instagram_key(self, account_id: int) -> str:
        return self._redis.key("rl", "{instagram}", "publish", f"a{account_id}")

    async def reserve_instagram_publish(
        self, *, account_id: int, platform_limit: int | None = None
    ) -> Decision:
        """Reserve one publish for an account within a moving 24 h window.

        `platform_limit` is the account's `content_publishing_limit` quota when known;
        the smaller of it and our setting applies. Fails closed when Redis is unreachable.
        """
        rate = self._instagram_rate(platform_limit)
        result = await self._sliding([(rate, self._instagram_key(account_id))])
        return self._closed(rate.capacity) if result is None else result[0]

    async def platform_call(self, platform: str) -> Decision:
        """Pace calls to one platform API (calls per second, shared by every replica)."""
        key = self._platform_keys.get(platform)
        if key is None:
            key = self._platform_keys[platform] = self._redis.key("rl", "{api}", platform)
        rates = [(self._platform_rate, key)]
        result = await self._sliding(rates)
        return self._local.hit(rates) if result is None else result[0]

    # -- report --------------------------------------------------------------------------

    async def report(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        instagram_account_ids: Sequence[int] = (),
    ) -> list[BudgetStatus]:
        """Used, left and reset time of each budget, for the `quota` command.

        Raises LimiterUnavailable when Redis is unreachable.
        """
        out: list[BudgetStatus] = []
        rates = [
            (self._user_rate, self._user_msg_key(workspace_id, chat_user_id), "your messages"),
            (self._workspace_rate, self._workspace_msg_key(workspace_id), "workspace messages"),
        ]
        msgs = await self._sliding([(r, k) for r, k, _ in rates], peek=True)
        if msgs is None:
            raise LimiterUnavailable("redis unreachable")
        for (rate, _, label), (count, reset_at) in zip(rates, msgs[1], strict=True):
            out.append(_status(f"{label} (per {rate.per})", count, rate.capacity, reset_at))

        caps = [self.policy.user_llm_tokens_per_day, self.policy.workspace_llm_tokens_per_day]
        llm = await self._ledger(
            "peek",
            tz=UTC,
            names=self._llm_names(workspace_id, chat_user_id),
            amounts=[0, 0],
            caps=caps,
        )
        if llm is None:
            raise LimiterUnavailable("redis unreachable")
        _, period, used = llm
        out.append(_status("your LLM tokens today (UTC)", used[0], caps[0], period.end))
        out.append(_status("workspace LLM tokens today (UTC)", used[1], caps[1], period.end))

        caps = [self.policy.youtube_daily_units, self.policy.youtube_daily_uploads]
        yt = await self._ledger("peek", tz=PACIFIC, names=self._YT_NAMES, amounts=[0, 0], caps=caps)
        if yt is None:
            raise LimiterUnavailable("redis unreachable")
        _, period, used = yt
        out.append(_status("YouTube quota units today (Pacific)", used[0], caps[0], period.end))
        out.append(_status("YouTube uploads today (Pacific)", used[1], caps[1], period.end))

        for account_id in instagram_account_ids:
            rate = self._instagram_rate(None)
            ig = await self._sliding([(rate, self._instagram_key(account_id))], peek=True)
            if ig is None:
                raise LimiterUnavailable("redis unreachable")
            count, reset_at = ig[1][0]
            out.append(
                _status(
                    f"Instagram publishes, account {account_id} (24 h)",
                    count,
                    rate.capacity,
                    reset_at,
                )
            )
        return out


def _status(name: str, used: int, limit: int, reset_at: datetime | None) -> BudgetStatus:
    return BudgetStatus(name, used, limit, max(limit - used, 0), reset_at)


def _budget_decision(used: Sequence[int], caps: Sequence[int], reset_at: datetime) -> Decision:
    """The tighter of several daily budgets as one Decision."""
    remaining = [max(c - u, 0) for u, c in zip(used, caps, strict=True)]
    i = min(range(len(caps)), key=lambda j: remaining[j])
    if remaining[i] > 0:
        return Decision(True, caps[i], remaining[i], 0.0, reset_at)
    retry = max(math.ceil((reset_at - datetime.now(UTC)).total_seconds()), 1)
    return Decision(False, caps[i], 0, float(retry), reset_at)
