"""The limiter interface the conversation uses, and a no-op implementation.

`storage.ratelimit.Budgets` satisfies `Budgets` structurally; `NoLimits` stands
in where no limiter is wired (or limits are configured off). The dataclasses
keep the exact field names of storage.ratelimit's so the two can be swapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one more unit is allowed now, and when to retry if not."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    reset_at: datetime | None


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One named budget's usage, for `quota`."""

    name: str
    used: int
    limit: int
    remaining: int
    reset_at: datetime | None


class Budgets(Protocol):
    """Per-user and per-workspace message rate and daily model-token budgets."""

    async def check_message(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        """Count one incoming message; refuse if the user or workspace is over its rate."""

    async def check_llm_budget(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        """Whether the user and workspace still have model tokens left today (counts nothing)."""

    async def charge_llm_tokens(self, *, workspace_id: int, chat_user_id: int, tokens: int) -> None:
        """Charge tokens the model reported using to today's budgets."""

    async def report(self, *, workspace_id: int, chat_user_id: int) -> list[BudgetStatus]:
        """Every budget that applies to this user, for `quota`."""


_UNLIMITED = 2**31 - 1


class NoLimits:
    """Allows everything; reports nothing. Used until a limiter is wired, or when off."""

    async def check_message(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        return Decision(True, _UNLIMITED, _UNLIMITED, 0.0, None)

    async def check_llm_budget(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        return Decision(True, _UNLIMITED, _UNLIMITED, 0.0, None)

    async def charge_llm_tokens(self, *, workspace_id: int, chat_user_id: int, tokens: int) -> None:
        return None

    async def report(self, *, workspace_id: int, chat_user_id: int) -> list[BudgetStatus]:
        return []
