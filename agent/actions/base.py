"""What actions return, and the one error type whose message is safe to show."""

from __future__ import annotations

from dataclasses import dataclass

from agent.context import ActionContext
from agent.limits import Budgets, NoLimits
from integrations.errors import IntegrationError
from storage.accounts import TokenUnavailable

PLATFORM_TITLES = {"youtube": "YouTube", "instagram": "Instagram", "tiktok": "TikTok", "x": "X"}


class ActionError(Exception):
    """A refusal or bad input; `str(err)` is written for the person in the chat."""


# Errors whose message is safe and useful to show in chat (everything else is a bug).
USER_ERRORS: tuple[type[Exception], ...] = (ActionError, IntegrationError, TokenUnavailable)


def user_message(exc: Exception) -> str:
    """The chat-safe text of one of USER_ERRORS."""
    if isinstance(exc, IntegrationError):
        return exc.user_message
    if isinstance(exc, TokenUnavailable):
        return f"Account {exc.account_ref} needs to be linked again (try `link`)."
    return str(exc)


@dataclass(frozen=True, slots=True)
class ApprovalTicket:
    """A pending action the requester must confirm before anything happens."""

    action_id: str
    summary: str
    expires_in_seconds: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """An action's answer: public text, maybe a private message, maybe an approval to ask."""

    text: str
    private: str | None = None
    approval: ApprovalTicket | None = None


def platform_title(name: str) -> str:
    return PLATFORM_TITLES.get(name, name)


def normalize_platform(value: str | None) -> str | None:
    """'YouTube', 'yt', 'ig' -> canonical platform names; None stays None."""
    if value is None:
        return None
    key = value.strip().lower()
    aliases = {"yt": "youtube", "ig": "instagram", "insta": "instagram", "twitter": "x"}
    key = aliases.get(key, key)
    if key not in PLATFORM_TITLES:
        raise ActionError(
            f"I don't know the platform '{value[:40]}'. Try one of: {', '.join(PLATFORM_TITLES)}."
        )
    return key


def configured_platforms(ctx: ActionContext) -> list[str]:
    ops = ctx.deps.ops
    return list(ops.configured()) if ops is not None else []


def require_configured(ctx: ActionContext, platform: str) -> None:
    if platform not in configured_platforms(ctx):
        raise ActionError(f"{platform_title(platform)} is not configured on this bot.")


def budgets(ctx: ActionContext) -> Budgets:
    b = ctx.deps.budgets
    return b if b is not None else NoLimits()
