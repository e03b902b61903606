"""Conversation throughput: ChatOpsService vs a bare `create_agent`, same model and tools.

Both sides run the same instant scripted chat model (one tool call to
`list_accounts`, which queries Postgres, then a final answer) and the same
tools. Ours adds everything the product does per message: identity, limits,
routing, per-thread history read and write, per-run call limits, reply
delivery. Prints messages/second and p50/p99 latency for both, and the ratio.

    python bench/conversation.py            # embedded Postgres/Redis under a temp dir
    DATABASE_URL=... REDIS_URL=... python bench/conversation.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain.agents import create_agent
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.context import ActionContext, AgentConfig, Deps
from agent.limits import NoLimits
from agent.runner import AgentRunner, RunnerConfig
from agent.session import ChatContext
from agent.tools import build_tools
from bot.core.messages import ApprovalRequest, IncomingMessage, Reply
from bot.core.service import ChatOpsService
from storage import identity
from storage.crypto import TokenCipher, generate_key_spec, parse_keys
from storage.db import Database, migrate
from storage.redis import RedisHandle

N = int(os.environ.get("BENCH_MESSAGES", "300"))
WARMUP = 30
ROUNDS = 3


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


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(sides: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Run the sides alternately, message by message, so load on a shared machine hits both alike."""
    for i in range(WARMUP):
        for one in sides.values():
            await one(i)
    lat: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(N):
        for name, one in sides.items():
            t0 = time.perf_counter()
            await one(i)
            lat[name].append((time.perf_counter() - t0) * 1000)
    return {
        name: {
            "rate": 1000 * len(values) / sum(values),
            "p50": statistics.median(values),
            "p99": pct(values, 99),
        }
        for name, values in lat.items()
    }


async def concurrent_rate(one: Any, *, in_flight: int = 16) -> float:
    """Messages/second with `in_flight` requests at once (distinct threads)."""
    start = time.perf_counter()
    for base in range(0, N, in_flight):
        await asyncio.gather(*(one(base + k) for k in range(in_flight)))
    return N / (time.perf_counter() - start)


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="socialops-bench-"))
    db = Database(dsn=os.environ.get("DATABASE_URL"), data_dir=tmp)
    redis = RedisHandle(
        url=os.environ.get("REDIS_URL"), data_dir=tmp, key_prefix="socialops-bench:"
    )
    await db.open()
    await migrate(db.pool)
    await redis.open()
    try:
        deps = Deps(
            pool=db.pool,
            redis=redis,
            cipher=TokenCipher(parse_keys(generate_key_spec("bench"))),
            config=AgentConfig(),
            budgets=NoLimits(),
        )
        tag = os.urandom(3).hex()
        model = InstantModel()
        ident = await identity.resolve(
            db.pool, frontend="local", workspace_external_id=f"bench-{tag}", user_external_id="u"
        )

        # The anchor: a bare create_agent, same model and tools, identity already in hand.
        bare = create_agent(model, tools=build_tools(), context_schema=ChatContext)

        async def anchor(i: int) -> None:
            chat = ChatContext(action=ActionContext(identity=ident, deps=deps), channel_id="c")
            state: Any = {"messages": [HumanMessage("what accounts do I have?")]}
            await bare.ainvoke(state, context=chat)

        service = ChatOpsService(
            deps=deps,
            runner=AgentRunner(model=model, config=RunnerConfig()),
            history_turns=12,
        )
        sink = NullSink()

        async def ours(i: int) -> None:
            await service.handle(
                IncomingMessage(
                    frontend="local",
                    workspace_id=f"bench-{tag}",
                    channel_id="c",
                    user_id="u",
                    text="what accounts do I have?",
                    thread_id=f"t{i % 20}",
                ),
                sink,
            )

        results: dict[str, list[dict[str, float]]] = {"anchor": [], "ours": []}
        for _ in range(ROUNDS):
            for name, figures in (await measure({"anchor": anchor, "ours": ours})).items():
                results[name].append(figures)

        def best(rows: list[dict[str, float]]) -> dict[str, float]:
            """Median over rounds of each figure."""
            return {k: statistics.median(r[k] for r in rows) for k in ("rate", "p50", "p99")}

        a, o = best(results["anchor"]), best(results["ours"])
        conc_a = statistics.median([await concurrent_rate(anchor) for _ in range(ROUNDS)])
        conc_o = statistics.median([await concurrent_rate(ours) for _ in range(ROUNDS)])
        print(f"conversation benchmark: {N} messages x {ROUNDS} rounds, instant scripted model")
        print(
            f"  anchor (bare create_agent): {a['rate']:8.1f} msg/s (serial)  p50 {a['p50']:6.2f} ms  p99 {a['p99']:6.2f} ms"
        )
        print(
            f"  ChatOpsService            : {o['rate']:8.1f} msg/s (serial)  p50 {o['p50']:6.2f} ms  p99 {o['p99']:6.2f} ms"
        )
        print(
            f"  overhead: p50 x{o['p50'] / a['p50']:.2f}, p99 x{o['p99'] / a['p99']:.2f},"
            f" throughput x{a['rate'] / o['rate']:.2f} (target <= 1.30)"
        )
        print(
            f"  16 in flight: anchor {conc_a:.1f} msg/s, ChatOpsService {conc_o:.1f} msg/s"
            f" (x{conc_a / conc_o:.2f})"
        )
        await db.pool.execute(
            "DELETE FROM workspaces WHERE frontend = 'local' AND external_id = $1", f"bench-{tag}"
        )
    finally:
        await redis.close()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main())
