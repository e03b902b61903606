"""Conversation throughput: ChatOpsService vs a bare `create_agent`, same model and tools.

Every side runs the same instant scripted chat model (one tool call to
`list_accounts`, which queries Postgres, then a final answer) and the same
tools. Two anchors: the bare agent given the question alone, and given the same
history ours carries (the thread's last 12 turns, built into messages on every call, as a
plain caller would; ours keeps the messages it built from stored rows,
`agent.runner.HistoryMessages`):
the targets hold against the second, the equal footing (what ours adds, not what a
longer LangGraph state costs any agent); the first is printed and recorded beside it. Ours adds everything the product does per message: identity, the
production limiter (`storage.ratelimit.Budgets` on real Redis: one call before
the run, one after), routing, per-thread history read, the pending-approval check,
per-run call limits, reply delivery. Prints messages/second and p50/p99 latency for
both, and the ratio, serially and 16 in flight.

The history write and the run's settlement run after the reply (as in production);
serially they are drained after each timed call, outside the timed region, so they
never land in the next call (often the anchor's); their cost is printed separately.
In flight, throughput includes them. Scaling rows: latency in threads that already
hold 0, 12 and 100 turns. As in every production role, the heap built at startup is
frozen before anything is timed (`bot.services.freeze_startup_heap`).

    python bench/conversation.py            # embedded Postgres/Redis under a temp dir
    DATABASE_URL=... REDIS_URL=... python bench/conversation.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage

from agent.context import ActionContext
from agent.runner import AgentRunner, RunnerConfig
from agent.session import ChatContext
from agent.tools import build_tools
from bench._chat import QUESTION, ChatBench, InstantModel, NullSink, chat_bench
from bench.results import figure, record
from bot import event_loop
from bot.core.service import ChatOpsService
from bot.services import freeze_startup_heap
from storage import conversations, identity
from storage.conversations import Turn

N = int(os.environ.get("BENCH_MESSAGES", "300"))
WARMUP = 30
ROUNDS = 3
IN_FLIGHT = 16
DEPTHS = (0, 12, 100)
DEPTH_MESSAGES = int(os.environ.get("BENCH_DEPTH_MESSAGES", "200"))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


Side = Callable[[int], Awaitable[None]]


async def measure(
    sides: dict[str, Side], settle: Callable[[], Awaitable[None]]
) -> dict[str, dict[str, float]]:
    """Run the sides alternately, message by message, so load on a shared machine hits
    both alike; `settle` (outside the timed region) runs after each call."""
    for i in range(WARMUP):
        for one in sides.values():
            await one(i)
            await settle()
    lat: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(N):
        for name, one in sides.items():
            t0 = time.perf_counter()
            await one(i)
            lat[name].append((time.perf_counter() - t0) * 1000)
            await settle()
    return {name: summary(values) for name, values in lat.items()}


def summary(values: list[float]) -> dict[str, float]:
    return {
        "rate": 1000 * len(values) / sum(values),
        "p50": statistics.median(values),
        "p99": pct(values, 99),
    }


async def concurrent_rate(one: Side, settle: Callable[[], Awaitable[None]]) -> float:
    """Messages/second with IN_FLIGHT requests at once (distinct users and threads),
    deferred writes included."""
    start = time.perf_counter()
    for base in range(0, N, IN_FLIGHT):
        await asyncio.gather(*(one(base + k) for k in range(IN_FLIGHT)))
    await settle()
    return N / (time.perf_counter() - start)


async def prefill(pool: Any, workspace_id: int, user_id: int, prefix: str, turns: int) -> None:
    """Threads `prefix`0.. each holding `turns` stored exchanges, in one statement."""
    if turns == 0:
        return
    threads = ROUNDS * DEPTH_MESSAGES + WARMUP
    await pool.execute(
        """
        INSERT INTO conversation_messages (workspace_id, thread_key, chat_user_id, role, content)
        SELECT $1, 'c:' || $3 || t, $2, CASE WHEN m % 2 = 0 THEN 'user' ELSE 'assistant' END,
               'an earlier message of about this length, turn ' || m
          FROM generate_series(0, $4 - 1) t, generate_series(0, 2 * $5 - 1) m
         ORDER BY t, m
        """,
        workspace_id,
        user_id,
        prefix,
        threads,
        turns,
    )


async def main() -> int:
    async with chat_bench() as bench:
        service = ChatOpsService(
            deps=bench.deps,
            runner=AgentRunner(model=InstantModel(), config=RunnerConfig()),
            history_turns=12,
        )
        try:
            return await measure_all(bench, service)
        finally:
            await service.drain()  # before the pool closes and the rows go


async def measure_all(bench: ChatBench, service: ChatOpsService) -> int:
    deps = bench.deps
    ident = await identity.resolve(
        deps.pool, frontend="local", workspace_external_id=bench.workspace, user_external_id="u0"
    )
    # The anchors: a bare create_agent, same model and tools, identity already in hand,
    # given the question alone, or with the thread's history as ours carries it.
    bare = create_agent(InstantModel(), tools=build_tools(), context_schema=ChatContext)
    window: list[Turn] = []

    async def bare_run(history: list[Turn]) -> None:
        chat = ChatContext(action=ActionContext(identity=ident, deps=deps), channel_id="c")
        earlier = [
            AIMessage(t.content) if t.role == "assistant" else HumanMessage(t.content)
            for t in history
        ]
        state: Any = {"messages": [*earlier, HumanMessage(QUESTION)]}
        await bare.ainvoke(state, context=chat)

    async def anchor(i: int) -> None:
        await bare_run([])

    async def anchor_history(i: int) -> None:
        await bare_run(window)

    sink = NullSink()

    async def say(i: int, thread: str) -> None:
        # One run per user at a time: messages in flight together come from different
        # people, as they would in a workspace.
        await service.handle(bench.message(i % IN_FLIGHT, thread), sink)

    async def ours(i: int) -> None:
        await say(i, f"t{i % 20}")

    async def nothing() -> None:
        return None

    writes: list[float] = []

    async def drain() -> None:
        t0 = time.perf_counter()
        await service.drain()
        writes.append((time.perf_counter() - t0) * 1000)

    freeze_startup_heap()  # what every production role does once its parts have started
    # Every thread filled to ours' full window (12 turns); the history anchor then carries
    # the same window, turned into messages on every call (ours keeps the ones it built).
    for i in range(20 * 13):
        await ours(i)
        await service.drain()
    window[:] = await conversations.recent(
        deps.pool,
        workspace_id=ident.workspace_id,
        thread_key=bench.message(0, "t0").thread_key,
        limit=24,
    )
    sides = {"anchor": anchor, "anchor_history": anchor_history, "ours": ours}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for _ in range(ROUNDS):
        for name, figures in (await measure(sides, drain)).items():
            results[name].append(figures)

    def med(rows: list[dict[str, float]]) -> dict[str, float]:
        """Median over rounds of each figure."""
        return {k: statistics.median(r[k] for r in rows) for k in ("rate", "p50", "p99")}

    a, h, o = (med(results[name]) for name in sides)
    conc: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(ROUNDS):  # interleaved, as the serial runs are
        conc["anchor"].append(await concurrent_rate(anchor, nothing))
        conc["anchor_history"].append(await concurrent_rate(anchor_history, nothing))
        conc["ours"].append(await concurrent_rate(ours, service.drain))
    ca, ch, co = (statistics.median(conc[name]) for name in sides)

    # History depth: each call in a thread that already holds 0, 12 or 100 turns.
    for depth in DEPTHS:
        await prefill(deps.pool, ident.workspace_id, ident.chat_user_id, f"d{depth}-", depth)
    depth_lat: dict[int, list[float]] = {d: [] for d in DEPTHS}
    depth_writes: dict[int, list[float]] = {d: [] for d in DEPTHS}
    for i in range(WARMUP + ROUNDS * DEPTH_MESSAGES):
        for depth in DEPTHS:
            t0 = time.perf_counter()
            await say(i, f"d{depth}-{i}")
            took = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            await service.drain()
            if i >= WARMUP:
                depth_lat[depth].append(took)
                depth_writes[depth].append((time.perf_counter() - t0) * 1000)

    print(f"conversation benchmark: {N} messages x {ROUNDS} rounds, instant scripted model,")
    print("  production limiter (Budgets on Redis) and Postgres")
    print(f"  history: ours and the second anchor carry {len(window)} earlier messages")
    for label, row in (
        ("bare create_agent, no history", a),
        ("bare create_agent, same history", h),
        ("ChatOpsService", o),
    ):
        print(
            f"  {label:32}: {row['rate']:8.1f} msg/s (serial)  p50 {row['p50']:6.2f} ms"
            f"  p99 {row['p99']:6.2f} ms"
        )
    print(
        f"  deferred history write and settlement (after the reply): p50 {statistics.median(writes):.2f} ms"
        f"  p99 {pct(writes, 99):.2f} ms"
    )
    print(
        f"  {IN_FLIGHT} in flight: bare {ca:.1f} msg/s, bare with history {ch:.1f} msg/s,"
        f" ChatOpsService {co:.1f} msg/s (x{ch / co:.2f} / x{ca / co:.2f})"
    )
    print(f"  history depth ({DEPTH_MESSAGES} x {ROUNDS} messages each, one thread each):")
    base = summary(depth_lat[0])
    for depth in DEPTHS:
        row = summary(depth_lat[depth])
        print(
            f"    {depth:3d} turns: p50 {row['p50']:6.2f} ms (x{row['p50'] / base['p50']:.2f})"
            f"  p99 {row['p99']:6.2f} ms (x{row['p99'] / base['p99']:.2f})"
            f"  write p50 {statistics.median(depth_writes[depth]):.2f} ms"
        )
    deep = summary(depth_lat[100])
    limit = 1.3
    same = "bare create_agent, same history"
    rows = [
        figure(
            "serial p50 latency",
            o["p50"],
            "ms",
            anchor=same,
            anchor_value=h["p50"],
            target="<= x1.30",
            met=o["p50"] <= limit * h["p50"],
        ),
        figure(
            "serial p99 latency",
            o["p99"],
            "ms",
            anchor=same,
            anchor_value=h["p99"],
            target="<= x1.30",
            met=o["p99"] <= limit * h["p99"],
        ),
        figure(
            f"{IN_FLIGHT} in flight, time per message",
            1000 / co,
            "ms",
            anchor=same,
            anchor_value=1000 / ch,
            target="<= x1.30",
            met=ch <= limit * co,
        ),
        # The same figures against the anchor without history: what carrying a
        # conversation costs on top (LangGraph's handling of the longer state included).
        figure(
            "serial p50 latency (anchor without history)",
            o["p50"],
            "ms",
            anchor="bare create_agent, no history",
            anchor_value=a["p50"],
        ),
        figure(
            f"{IN_FLIGHT} in flight, time per message (anchor without history)",
            1000 / co,
            "ms",
            anchor="bare create_agent, no history",
            anchor_value=1000 / ca,
        ),
        *(
            figure(
                f"p50 latency at {depth} history turns",
                summary(depth_lat[depth])["p50"],
                "ms",
                anchor="0 turns",
                anchor_value=base["p50"],
            )
            for depth in DEPTHS[1:]
        ),
        figure(
            "p50 at 100 turns vs 0",
            deep["p50"],
            "ms",
            anchor="0 turns",
            anchor_value=base["p50"],
            target="<= x1.20",
            met=deep["p50"] <= 1.2 * base["p50"],
        ),
        figure(
            "p99 at 100 turns vs 0",
            deep["p99"],
            "ms",
            anchor="0 turns",
            anchor_value=base["p99"],
            target="<= x1.20",
            met=deep["p99"] <= 1.2 * base["p99"],
        ),
    ]
    return 0 if record("conversation", rows) else 1


if __name__ == "__main__":
    raise SystemExit(event_loop.run(main()))
