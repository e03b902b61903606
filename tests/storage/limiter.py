"""What the limiter's tests share: the policy they run under and a count of the script
commands sent."""

from __future__ import annotations

from typing import Any

import pytest

from storage.ratelimit import LimitPolicy
from storage.redis import RedisHandle

POLICY = LimitPolicy(
    user_messages="3/minute",
    workspace_messages="4/minute",
    user_llm_tokens_per_day=100,
    workspace_llm_tokens_per_day=150,
)


def script_commands(redis: RedisHandle, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commands the limiter sends from now on (EVALSHA, EVAL), in order."""
    sent: list[str] = []
    call = redis.scripts.call

    async def counting(*args: Any) -> Any:
        sent.append(str(args[0]))
        return await call(*args)

    monkeypatch.setattr(redis.scripts, "call", counting)
    return sent
