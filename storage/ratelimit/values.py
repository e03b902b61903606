"""What the limiter answers with and is configured by: plain values, no wording for people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Scope = Literal["user", "workspace", "app", "account"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may this happen now?", with what is left and when to retry.

    `counter` names the counter that refused, or when allowed the one with the smallest
    share left. `unavailable`: Redis could not be asked, so nothing was charged there (a
    limit that fails open answered from this process's own counts instead).
    `charged_at` (Redis' clock at a granted reservation) lets `refund` find what it charged.
    """

    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds; 0.0 when allowed
    reset_at: datetime | None
    unavailable: bool = False
    counter: str | None = None
    charged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer for a chat message bound for the agent: its rates, its run, its tokens.

    Steps run in order and stop at the first refusal: `message` (the rates; the message
    is counted when allowed), `run` (the user's run slot token; None when refused earlier
    or another run of the user's is going), `tokens` (the worst-case reservation; None
    when not reached), `reserved` (how many tokens it holds when admitted). Hand it back
    to `Budgets.finish_run` after the run.
    """

    message: Decision
    run: str | None = None
    tokens: Decision | None = None
    reserved: int = 0

    @property
    def allowed(self) -> bool:
        return self.run is not None and self.tokens is not None and self.tokens.allowed


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget for the `quota` command, structured so the agent layer can word it.

    A calendar-day budget has `reset_zone` (its day's IANA zone) and resets at `reset_at`;
    a moving window has `rolling_seconds`, and `reset_at` is when it will be empty again.
    """

    scope: Scope
    counter: str
    label: str
    used: int
    limit: int
    remaining: int
    reset_at: datetime | None
    platform: str | None = None
    account_id: int | None = None
    rolling_seconds: int | None = None
    reset_zone: str | None = None


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """The bot's own limits, built from `bot.settings` at assembly.

    Platform quotas are not here: each platform declares its counters (see `CounterSpec`).
    """

    user_messages: str
    workspace_messages: str
    user_llm_tokens_per_day: int
    workspace_llm_tokens_per_day: int


@dataclass(frozen=True, slots=True)
class SlotClaim:
    """The answer to "may I be one of the `limit` holders of `key` now?".

    `token` is None when there is nothing to release: refused, or granted while Redis
    was unreachable (bounds fail open). `retry_after`: seconds until a slot frees.
    """

    key: str
    granted: bool
    token: str | None = None
    retry_after: float = 0.0


class LimiterUnavailable(Exception):
    """Redis is unreachable and the answer cannot be estimated (e.g. the quota report)."""

    user_message = "Quota figures are unavailable right now; try again in a moment."
