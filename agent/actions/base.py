"""What actions return, and the one error type whose message is safe to show."""

from __future__ import annotations

from dataclasses import dataclass

from agent.context import ActionContext
from agent.digest_content import Digest
from agent.layout import Layout
from integrations.capabilities import PlatformCapabilities
from integrations.errors import IntegrationError
from storage.accounts import TokenUnavailable


class ActionError(Exception):
    """A refusal or bad input; `str(err)` is written for the person in the chat."""


class NotAdmin(ActionError):
    """An admin-only action asked for by someone who does not administer the workspace
    (the API answers 403)."""


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
    # The same answer laid out (header, fields, top posts) for front-ends that can show it;
    # `text` stays the complete plain version.
    layout: Layout | None = None
    # The private message is a digest (`digest preview`): `private` is its plain text,
    # and front-ends show it as the real digest (`bot.digest_layout`).
    private_digest: Digest | None = None

    @classmethod
    def laid_out(cls, layout: Layout) -> Outcome:
        """An answer whose plain text is its layout's."""
        return cls(layout.plain_text(), layout=layout)


def platform_title(ctx: ActionContext, name: str) -> str:
    """The platform's name as people write it ("YouTube")."""
    return ctx.deps.platforms.display(name)


def normalize_platform(ctx: ActionContext, value: str | None) -> str | None:
    """'YouTube', 'yt', 'ig' -> the registered platform name; None stays None."""
    if value is None:
        return None
    name = ctx.deps.platforms.resolve(value)
    if name is None:
        known = ", ".join(ctx.deps.platforms.names) or "none"
        raise ActionError(f"I don't know the platform '{value[:40]}'. Try one of: {known}.")
    return name


def capabilities(ctx: ActionContext, name: str) -> PlatformCapabilities:
    return ctx.deps.platforms.capabilities(name)


def require_configured(ctx: ActionContext, platform: str) -> None:
    if platform not in ctx.deps.platforms.configured() or ctx.deps.ops is None:
        raise ActionError(f"{platform_title(ctx, platform)} is not configured on this bot.")
