"""What every action receives: who is asking, and the shared dependencies.

Identity always comes from the front-end (never from model-filled arguments);
actions check it before touching an account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import asyncpg

from agent.digest_insights import Commentary
from agent.layout import Layout
from agent.limits import Budgets, NoLimits
from agent.ports import PlatformOps
from agent.ports import Progress as Progress  # the actions name it from here
from integrations.registry import Platforms
from storage.approvals import PendingAction
from storage.crypto import TokenCipher
from storage.identity import Identity
from storage.redis import RedisHandle

Executor = Callable[["ActionContext", PendingAction, Progress | None], Awaitable[str]]
"""Code that performs one kind of approved action (see agent.actions.EXECUTORS)."""


# Tell a person something outside their conversation:
# `await notify(frontend, reply_to, text, layout=None) -> delivered`, `layout` (with its
# buttons) for the front-ends that show one. A plain Callable, not a Protocol: the agent
# validates its context with pydantic, which can only check callables.
Notify = Callable[..., Awaitable[bool]]


"""Tell a chat user something outside their conversation: (front-end, reply_to, text)."""


@dataclass(frozen=True, slots=True)
class ChatProfile:
    """What the requester's chat platform says of them: their time zone (IANA name),
    if it offers one. (Whether they administer the workspace is `ChatContext.is_admin`.)"""

    time_zone: str | None = None


ProfileLookup = Callable[[Identity], Awaitable[ChatProfile]]


async def no_profile(identity: Identity) -> ChatProfile:
    """Where the front-end says nothing of its users: no zone."""
    return ChatProfile()


async def no_notify(
    frontend: str, reply_to: dict[str, Any], text: str, /, *, layout: Layout | None = None
) -> bool:
    """Where no front-end is wired (tests of actions alone): nothing is delivered."""
    return False


# Asks the person's front-end whether they administer their workspace (one message's check).
AdminCheck: TypeAlias = Callable[[], Awaitable[bool]]

AdminDirectory = Callable[[Identity], Awaitable[bool]]


async def no_admins(identity: Identity) -> bool:
    """Nobody is an admin where no front-end says who is."""
    return False


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The settings actions need, copied from bot.settings at assembly."""

    public_base_url: str = "http://localhost:8000"
    oauth_state_ttl_seconds: int = 600
    approval_ttl_seconds: int = 900
    # The longest one platform call (e.g. one account's metrics) may take inside a request.
    call_deadline_seconds: float = 20.0
    # How long a signed /media/{token} link (for platforms that fetch by URL) stays valid.
    media_url_ttl_seconds: int = 7200
    # Front-ends whose chat sign-in is configured (Sign in with Slack, Discord OAuth2):
    # links made there must be finished by the person who signed in as the requester.
    signin_frontends: frozenset[str] = frozenset()
    # Where no sign-in applies: how long the confirmation code shown after consent lasts.
    link_code_ttl_seconds: int = 900
    # How long an account's current owner has to approve a request to take it over
    # (longer than other approvals: the owner is not the one talking right now).
    link_request_ttl_seconds: int = 24 * 3600
    # How far ahead a post may be scheduled (SCHEDULE_MAX_DAYS).
    schedule_max_days: int = 90


@dataclass(frozen=True, slots=True)
class Deps:
    """Long-lived objects shared by all actions (built once per process by bot.assembly)."""

    pool: asyncpg.Pool
    redis: RedisHandle
    cipher: TokenCipher
    config: AgentConfig
    # Every registered platform's capabilities, and clients for the configured ones.
    platforms: Platforms = field(default_factory=lambda: Platforms([]))
    budgets: Budgets = field(default_factory=NoLimits)
    # Platform work (linking, uploads, metrics); None where no platform work is wired.
    ops: PlatformOps | None = None
    # Approved-action name -> the code that performs it.
    executors: Mapping[str, Executor] = field(default_factory=dict)
    # Tells people outside their conversation (bot.notify.Notifiers.notify in a process).
    notify: Notify = no_notify
    # A model's words on a digest's numbers (agent.digest_insights); None: no model.
    commentary: Commentary | None = None
    # The requester's zone and role from their chat platform (bot.chat_profiles).
    chat_profile: ProfileLookup = no_profile
    # Whether a chat user administers their workspace, asked of its front-end (bot.admins),
    # for callers that bring no front-end of their own (the companion API).
    is_admin: AdminDirectory = no_admins


@dataclass(frozen=True, slots=True)
class ActionContext:
    """Who is asking, and how: a command they typed, or the assistant acting on their
    message (`request_text`), which approval prompts say so the person can tell."""

    identity: Identity
    deps: Deps
    origin: Literal["command", "assistant"] = "command"
    request_text: str = ""
