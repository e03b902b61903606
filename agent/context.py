"""What every action receives: who is asking, and the shared dependencies.

Identity always comes from the front-end (never from model-filled arguments);
actions check it before touching an account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from integrations.base import SocialPlatform
from storage.crypto import TokenCipher
from storage.identity import Identity
from storage.redis import RedisHandle


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The settings actions need, copied from bot.settings at assembly."""

    public_base_url: str = "http://localhost:8000"
    youtube_default_privacy: str = "private"
    oauth_state_ttl_seconds: int = 600
    approval_ttl_seconds: int = 900
    # The longest one platform call (e.g. one account's metrics) may take inside a request.
    call_deadline_seconds: float = 20.0
    # How long a signed /media/{token} link (for platforms that fetch by URL) stays valid.
    media_url_ttl_seconds: int = 7200


@dataclass(slots=True)
class Deps:
    """Long-lived objects shared by all actions (built once in bot.services)."""

    pool: asyncpg.Pool
    redis: RedisHandle
    cipher: TokenCipher
    config: AgentConfig
    # Configured platforms only; a missing key means "not configured".
    platforms: dict[str, SocialPlatform] = field(default_factory=dict)
    # storage.ratelimit.Budgets once wired (typed loosely to keep this module light).
    budgets: Any = None
    # agent.ports.PlatformOps implementation (agent.platform_ops.PlatformOps once wired).
    ops: Any = None


@dataclass(frozen=True, slots=True)
class ActionContext:
    identity: Identity
    deps: Deps
