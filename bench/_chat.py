"""What the conversation benches share: an instant scripted model, a sink that drops
replies, limits that never refuse, and the stores and dependencies a ChatOpsService runs
on (embedded Postgres/Redis under a temp dir, or DATABASE_URL/REDIS_URL), cleaned up after.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.context import AgentConfig, Deps
from bot.core.messages import ApprovalRequest, IncomingMessage, Reply
from storage.crypto import TokenCipher, generate_key_spec, parse_keys
from storage.db import Database, migrate
from storage.ratelimit import Budgets, LimitPolicy
from storage.redis import RedisHandle

# Limits high enough never to refuse: the benches measure their cost, not their refusals.
POLICY = LimitPolicy(
    user_messages="1000000/minute",
    workspace_messages="1000000/minute",
    user_llm_tokens_per_day=10**12,
    workspace_llm_tokens_per_day=10**12,
)
QUESTION = "what accounts do I have?"


class InstantModel(BaseChatModel):
    """Calls `list_accounts` once, then answers; no I/O, no randomness."""

    @property
    def _llm_type(self) -> str:
        return "instant-scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> InstantModel:  # type: ignore[override]
        return self

    def _reply(self, messages: list[BaseMessage]) -> ChatResult:
        usage = {"input_tokens": 50, "output_tokens": 10, "total_tokens": 60}
        if isinstance(messages[-1], ToolMessage):
            msg = AIMessage("You have no linked accounts yet.", usage_metadata=usage)
        else:
            msg = AIMessage(
                "",
                tool_calls=[
                    {"name": "list_accounts", "args": {}, "id": "call_1", "type": "tool_call"}
                ],
                usage_metadata=usage,
            )
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return self._reply(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kw: Any,
    ) -> ChatResult:
        return self._reply(messages)


class NullSink:
    async def send(self, reply: Reply) -> str:
        return "1"

    async def update(self, message_ref: str, reply: Reply) -> None:
        return None

    async def send_private(self, reply: Reply) -> None:
        return None

    async def ask_approval(self, request: ApprovalRequest) -> None:
        return None


@dataclass(frozen=True)
class ChatBench:
    """The stores, the dependencies on them (production limiter), and this run's workspace."""

    db: Database
    redis: RedisHandle
    deps: Deps
    workspace: str

    def message(self, user: int, thread: str) -> IncomingMessage:
        """The bench's question from user `user` in thread `thread`."""
        return IncomingMessage(
            frontend="local",
            workspace_id=self.workspace,
            channel_id="c",
            user_id=f"u{user}",
            text=QUESTION,
            thread_id=thread,
        )


@contextlib.asynccontextmanager
async def chat_bench() -> AsyncIterator[ChatBench]:
    """Open the stores, migrate, and on the way out delete the run's workspace and keys
    (drain every service first: its deferred writes need the pool)."""
    tmp = Path(tempfile.mkdtemp(prefix="socialops-bench-"))
    db = Database(dsn=os.environ.get("DATABASE_URL"), data_dir=tmp)
    redis = RedisHandle(
        url=os.environ.get("REDIS_URL"), data_dir=tmp, key_prefix=f"socialops-bench:{os.getpid()}:"
    )
    await db.open()
    await migrate(db.pool)
    await redis.open()
    workspace = f"bench-{os.urandom(3).hex()}"
    try:
        deps = Deps(
            pool=db.pool,
            redis=redis,
            cipher=TokenCipher(parse_keys(generate_key_spec("bench"))),
            config=AgentConfig(),
            budgets=Budgets(redis=redis, policy=POLICY),
        )
        yield ChatBench(db=db, redis=redis, deps=deps, workspace=workspace)
    finally:
        await db.pool.execute(
            "DELETE FROM workspaces WHERE frontend = 'local' AND external_id = $1", workspace
        )
        async for key in redis.client.scan_iter(match=redis.key("") + "*"):
            await redis.client.delete(key)
        await redis.close()
        await db.close()
