"""The limiter interface the conversation and platform work use, and a no-op one.

`storage.ratelimit.Budgets` satisfies `Budgets` structurally; `NoLimits` stands
in where no limiter is wired (or limits are configured off). Decisions and
statuses are storage.ratelimit's own types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from storage.ratelimit import Admission, BudgetStatus, Decision

__all__ = ["Admission", "BudgetStatus", "Budgets", "Decision", "NoLimits"]


@runtime_checkable
class Budgets(Protocol):
    """Message rates, daily model-token budgets and each platform's declared quotas."""

    async def check_message(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        """Count one incoming message; refuse if the user or workspace is over its rate."""

    async def admit_run(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        tokens: int,
        ttl: float,
        at_least: int | None = None,
    ) -> Admission:
        """Count a message bound for the agent, claim the user's single run slot and
        reserve up to `tokens` (no fewer than `at_least`, by default all) from today's
        budgets: one call, in that order."""

    async def finish_run(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        admission: Admission,
        used: int,
    ) -> None:
        """Settle an admitted run's real use against its reservation and free its slot."""

    async def reserve_tokens(
        self, *, workspace_id: int, chat_user_id: int | None, tokens: int
    ) -> Decision:
        """Reserve `tokens` from the user's (None: no user's) and the workspace's day, both
        or neither, for a model call outside a run: no message counted, no run slot taken."""

    async def settle_tokens(
        self,
        *,
        workspace_id: int,
        chat_user_id: int | None,
        reservation: Decision,
        reserved: int,
        used: int,
    ) -> None:
        """Settle a `reserve_tokens` reservation to the real use."""

    async def reserve(
        self, platform: str, account: int | None, amounts: Mapping[str, int]
    ) -> Decision:
        """Take `amounts` from the platform's counters, all or nothing."""

    async def refund(
        self,
        platform: str,
        account: int | None,
        amounts: Mapping[str, int],
        reservation: Decision | None = None,
    ) -> None:
        """Give back a reservation's amounts (work that never reached the platform)."""

    async def report(
        self, *, workspace_id: int, chat_user_id: int, accounts: Sequence[tuple[str, int]] = ()
    ) -> list[BudgetStatus]:
        """Every budget that applies to this user and these (platform, account id) pairs."""


_UNLIMITED = 2**31 - 1


class NoLimits:
    """Allows everything; reports nothing. Used until a limiter is wired, or when off."""

    async def check_message(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        return Decision(True, _UNLIMITED, _UNLIMITED, 0.0, None)

    async def admit_run(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        tokens: int,
        ttl: float,
        at_least: int | None = None,
    ) -> Admission:
        allowed = Decision(True, _UNLIMITED, _UNLIMITED, 0.0, None)
        return Admission(allowed, "unlimited", allowed, tokens)

    async def finish_run(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        admission: Admission,
        used: int,
    ) -> None:
        return None

    async def reserve_tokens(
        self, *, workspace_id: int, chat_user_id: int | None, tokens: int
    ) -> Decision:
        return Decision(True, _UNLIMITED, _UNLIMITED, 0.0, None)

    async def settle_tokens(
        self,
        *,
        workspace_id: int,
        chat_user_id: int | None,
        reservation: Decision,
        reserved: int,
        used: int,
    ) -> None:
        return None

    async def reserve(
        self, platform: str, account: int | None, amounts: Mapping[str, int]
    ) -> Decision:
        return Decision(True, _UNLIMITED, _UNLIMITED, 0.0, None)

    async def refund(
        self,
        platform: str,
        account: int | None,
        amounts: Mapping[str, int],
        reservation: Decision | None = None,
    ) -> None:
        return None

    async def report(
        self, *, workspace_id: int, chat_user_id: int, accounts: Sequence[tuple[str, int]] = ()
    ) -> list[BudgetStatus]:
        return []
