"""Rate limits and quota ledgers in Redis: one atomic Lua script call per decision.

Two kinds of counter, mixed freely in one call:

* **moving windows** for rates (chat messages per user and per workspace, a chat
  channel's posting pace, platform counters declared with `rolling_seconds`);
* **calendar-day ledgers** for daily budgets (LLM tokens per UTC day, platform
  counters that reset at midnight in their declared zone): reserved all or nothing,
  refunded, expired a day after the day ends.

Platforms declare their counters as data (`CounterSpec`); storage never names one.
Redis down: chat limits fail *open* to a per-process limiter, logging one warning per
outage and recovering by themselves; platform quotas fail *closed* with a short
retry_after and `Decision.unavailable`. Leased slots (`claim_slot`: at most N holders
of a key, e.g. digest deliveries per workspace) fail open too. Every Redis call is
bounded by a timeout.

Modules: `budgets` (the API), `quotas` (declared counters), `ledger` (the script call),
`scripts` (the Lua, and why it is hand-written), `counters` (a call's shared values),
`windows` (rates and days), `fallback` (outage tracking and the per-process limiter),
`values` (what callers receive).
"""

from storage.ratelimit.budgets import Budgets
from storage.ratelimit.quotas import CounterSpec
from storage.ratelimit.values import (
    Admission,
    BudgetStatus,
    Decision,
    LimiterUnavailable,
    LimitPolicy,
    Scope,
    SlotClaim,
)
from storage.ratelimit.windows import Period, Rate, candidate_periods, day_period

__all__ = [
    "Admission",
    "BudgetStatus",
    "Budgets",
    "CounterSpec",
    "Decision",
    "LimitPolicy",
    "LimiterUnavailable",
    "Period",
    "Rate",
    "Scope",
    "SlotClaim",
    "candidate_periods",
    "day_period",
]
