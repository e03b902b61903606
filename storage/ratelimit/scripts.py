"""The Lua every limit runs through (one counters library, four scripts), and why it is
hand-written.

Every decision reads the clock with Redis `TIME`, so replicas whose clocks disagree
make the same decision, and checks and charges all its counters in one atomic call,
so a request refused by one counter is charged to none. A chat message bound for the
agent is one call (`ADMIT`: message rates, run slot, token reservation) and its run's
settlement another (`FINISH`). Why not `limits`' Redis
strategies: its moving window is exact but stamps entries with the *client's*
`time.time()` (skewed replicas would disagree), its sliding-window counter is an
approximation that can admit more than L in some windows, and neither charges
several limits atomically nor keeps a calendar-day ledger with refunds. We still use
`limits` for what it does well: parsing rate strings ("20/minute") and the in-process
moving window used as the fail-open fallback when Redis is unreachable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Two kinds of counter, any mix of them in one call:
#
# * 'r', a moving window: a list of the admission times (ms) still inside the window,
#   newest first. Expired entries are popped from the tail as they age out (each entry
#   is pushed and popped once, so this is amortised O(1)), the length is the count in
#   the window, and an amount a is admitted while count + a <= limit, so no window of
#   that length ever holds more than `limit` admissions, whatever the callers' clocks say.
#   A refusal's retry time is when enough of the oldest entries will have left.
# * 'd', a calendar-day ledger: one integer per day, under one key per candidate day;
#   the candidate whose [start, end) holds Redis' clock is today's. Kept a day past its
#   end so late reports and refunds still see it.
#
# Counters are packed in ARGV, per counter: kind, amount, limit, then
#   'r': window_ms                      (uses 1 key)
#   'd': n, start_ms_1, end_ms_1, ...   (uses n keys, one per candidate day)
# mode 'reserve': all or nothing; 'peek': the same check, charging nothing;
#      'charge': add without checking (work already done); 'refund': give back, from the
#      window entries stamped `stamp` ms, and from a day only while it lasts.
# Only amounts > 0 are checked or changed (peek with 0 just reads); the caller ensures
# amount <= limit for a check, so a refused window always holds an entry to wait for.
# Every script returns one space-separated string (cheaper to parse than a nested
# reply): "allowed now_ms used_1 retry_ms_1 reset_ms_1 used_2 ...", used after the call,
# retry_ms > 0 only for a counter that refused, reset_ms 0 for an empty window;
# or "-1 now_ms" when no candidate day holds Redis' clock (outside a refund).
_LIB = """
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Reads the counters packed in ARGV[a..last] (keys from KEYS[k]) into cs, checking them
-- when mode is 'reserve' or 'peek'. Returns allowed, whether every day found today, and
-- the next key index.
local function read(cs, mode, a, last, k, now)
  local check = mode == 'reserve' or mode == 'peek'
  local allowed, found = true, true
  while a <= last do
    local c = {kind = ARGV[a], amount = tonumber(ARGV[a + 1]), limit = tonumber(ARGV[a + 2]),
               used = 0, retry = 0, reset = 0}
    if c.kind == 'r' then
      c.key = KEYS[k]
      c.window = tonumber(ARGV[a + 3])
      k, a = k + 1, a + 4
      local horizon = now - c.window
      local tail = redis.call('LINDEX', c.key, -1)
      while tail and tonumber(tail) <= horizon do
        redis.call('RPOP', c.key)
        tail = redis.call('LINDEX', c.key, -1)
      end
      if tail then c.used = redis.call('LLEN', c.key) end
      if check and c.amount > 0 and c.used + c.amount > c.limit then
        -- the (used + amount - limit)-th oldest entry, index limit - amount, must leave first
        local gate = tonumber(redis.call('LINDEX', c.key, c.limit - c.amount))
        c.retry = math.max(gate - horizon, 1)
        allowed = false
      end
    else
      local n = tonumber(ARGV[a + 3])
      for i = 1, n do
        local s, e = tonumber(ARGV[a + 2 + 2 * i]), tonumber(ARGV[a + 3 + 2 * i])
        if now >= s and now < e then c.key, c.reset = KEYS[k + i - 1], e end
      end
      k, a = k + n, a + 4 + 2 * n
      if c.key then
        c.used = tonumber(redis.call('GET', c.key) or '0')
        if check and c.amount > 0 and c.used + c.amount > c.limit then
          c.retry = math.max(c.reset - now, 1)
          allowed = false
        end
      elseif mode ~= 'refund' then
        found = false
      end
    end
    cs[#cs + 1] = c
  end
  return allowed, found, k
end

-- Charges (mode 'reserve' or 'charge') or refunds every counter read into cs.
local function write(cs, mode, stamp, now)
  for _, c in ipairs(cs) do
    if c.key and c.amount > 0 then
      if c.kind == 'r' then
        if mode ~= 'refund' then
          for _ = 1, c.amount do redis.call('LPUSH', c.key, now) end
          redis.call('PEXPIRE', c.key, c.window)
          c.used = c.used + c.amount
        elseif stamp ~= '0' then
          c.used = c.used - redis.call('LREM', c.key, c.amount, stamp)
        end
      else
        if mode == 'refund' then
          c.used = math.max(c.used - c.amount, 0)
        else
          c.used = c.used + c.amount
        end
        redis.call('SET', c.key, c.used)
        redis.call('PEXPIREAT', c.key, c.reset + 86400000)
      end
    end
  end
end

-- Appends "used retry_ms reset_ms" of every counter in cs to out.
local function encode(out, cs)
  for _, c in ipairs(cs) do
    if c.kind == 'r' and c.used > 0 then
      c.reset = tonumber(redis.call('LINDEX', c.key, 0)) + c.window
    end
    out[#out + 1] = c.used
    out[#out + 1] = c.retry
    out[#out + 1] = c.reset
  end
end
"""

# ARGV: mode, stamp, then the counters.
_COUNTERS = """
local now = clock()
local mode = ARGV[1]
local cs = {}
local allowed, found = read(cs, mode, 3, #ARGV, 1, now)
if not found then return '-1 ' .. now end
if allowed and mode ~= 'peek' then write(cs, mode, ARGV[2], now) end
local out = {allowed and 1 or 0, now}
encode(out, cs)
return table.concat(out, ' ')
"""

# A chat message bound for the agent, in one call: its message rates, the user's one
# run slot, and the run's token reservation. Each step runs only if the one before
# passed, and the message stays counted when a later step refuses (as a message to a
# command is). The reservation is a range: as much of `most` (the token counters' amount)
# as every token counter has room for, and no less than `least`; the caller reserves for
# the largest history the run may carry before it has read the history, and checks the
# run's exact worst case against the grant once it has. Token counters are calendar days.
# KEYS: the run slot, then the counters' keys. ARGV: slot token, slot ttl_ms, index in
# ARGV where the token counters start, least, then the message counters, then the token
# counters. Returns "stage now granted readings...": stage 0 messages refused, 1 another
# run holds the slot, 2 tokens refused (slot given back), 3 admitted with `granted`.
_ADMIT = """
local now = clock()
local split, least = tonumber(ARGV[3]), tonumber(ARGV[4])
local msgs, toks = {}, {}
local msgs_ok, _, k = read(msgs, 'reserve', 5, split - 1, 2, now)
local _, found = read(toks, 'charge', split, #ARGV, k, now)
if not found then return '-1 ' .. now end
local room = math.huge
for _, c in ipairs(toks) do room = math.min(room, c.amount, c.limit - c.used) end
local stage, granted = 0, 0
if msgs_ok then
  write(msgs, 'reserve', '0', now)
  stage = 1
  if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    if room >= least then
      for _, c in ipairs(toks) do c.amount = room end
      write(toks, 'reserve', '0', now)
      stage, granted = 3, room
    else
      for _, c in ipairs(toks) do
        if c.used + least > c.limit then c.retry = math.max(c.reset - now, 1) end
      end
      redis.call('DEL', KEYS[1])
      stage = 2
    end
  end
end
local out = {stage, now, granted}
encode(out, msgs)
encode(out, toks)
return table.concat(out, ' ')
"""

# After a run, in one call: charge what it used beyond its reservation or refund the
# rest, and free the run slot if it still holds our token (a slot that outlived its ttl
# and was claimed again is never freed by the old run). KEYS: the slot, then the
# counters' keys. ARGV: slot token, mode ('charge' or 'refund'), stamp, the counters.
_FINISH = """
local now = clock()
local cs = {}
local _, found = read(cs, ARGV[2], 4, #ARGV, 2, now)
if found then write(cs, ARGV[2], ARGV[3], now) end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if not found then return '-1 ' .. now end
local out = {1, now}
encode(out, cs)
return table.concat(out, ' ')
"""

# SLOTS: at most `limit` holders of KEYS[1] at once (a zset: token -> lease end, ms).
# Hand-written because redis-py's Lock is a single holder and `limits` counts rates,
# not holders; leases end on Redis' clock like every other decision here.
# ARGV: 'claim' | 'release', token, limit, ttl_ms. A holder that never releases (its
# process died) drops out when its lease ends. Reply: '1 0' claimed, '0 <ms until the
# first lease ends>' refused, '1 0' released.
_SLOTS = """
local now = clock()
if ARGV[1] == 'release' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  return '1 0'
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return '0 ' .. math.max(tonumber(first[2]) - now, 1)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return '1 0'
"""


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1, for EVALSHA."""

    source: str
    sha: str

    @classmethod
    def of(cls, source: str) -> Script:
        return cls(source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


COUNTERS = Script.of(_LIB + _COUNTERS)
ADMIT = Script.of(_LIB + _ADMIT)
FINISH = Script.of(_LIB + _FINISH)
SLOTS = Script.of(_LIB + _SLOTS)
