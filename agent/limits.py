"""The limiter interface the conversation uses, and a no-op implementation.

`storage.ratelimit.Budgets` satisfies `Budgets` structurally; `NoLimits` stands
in where no limiter is wired (or limits are configured off). Decisions and
statuses are storage.ratelimit's own types.
"""

from __future__ import annotations

from typing import Protocol

from storage.ratelimit import BudgetStatus, Decision

__all__ = ["BudgetStatus", "Budgets", "Decision", "NoLimits"]


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
