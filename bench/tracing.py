"""Tracing's cost: conversation throughput with tracing on against off, in one run.

The same ChatOpsService, instant scripted model and tools as bench/conversation.py
(a `list_accounts` tool call that queries Postgres, the production limiter on Redis,
the history write). "Off" is the production default (no OTLP endpoint: nothing
installed); "on" is what `configure` installs with an endpoint (every span of ours,
the asyncpg and Redis instrumentation, a BatchSpanProcessor) exporting to an
in-process exporter that encodes every span to OTLP protobuf, so the figure is the
tracing itself, not a collector's network. A second scenario gives the model a 50 ms
answer time, to put the same cost against a realistic turn. Small blocks of messages
alternate off/on (tracing installed and removed between blocks, outside the timed
region), so load on a shared machine hits both alike. Like `run_parts`, the bench
freezes the startup heap (`freeze_startup_heap`) before it starts.

    python bench/tracing.py            # embedded Postgres/Redis under a temp dir
    DATABASE_URL=... REDIS_URL=... python bench/tracing.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agent.runner import AgentRunner, RunnerConfig
from bench._chat import ChatBench, InstantModel, NullSink, chat_bench
from bench.results import figure, record
from bot import event_loop, telemetry
from bot.core.service import ChatOpsService
from bot.services import freeze_startup_heap

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "40"))
BLOCK = 20
IN_FLIGHT = 16
TARGET = 1.10
# The second scenario: a model that answers each call in this long (a fast hosted model;
# most take several times longer), so the figure is tracing against a realistic turn.
MODEL_SECONDS = 0.05
MODEL_ROUNDS = int(os.environ.get("BENCH_MODEL_ROUNDS", "8"))


# What brought the first measurement (x1.19 serial, x1.28 with 16 in flight, 12 spans
# per message, +2.4 ms of CPU) down, printed with each run.
CHANGES = (
    "changed since x1.19 serial / x1.28 in flight: full collections walked the startup heap",
    "  (frozen now: bot.services.freeze_startup_heap), and tracing's longer-lived objects",
    "  made them more frequent; Postgres and Redis spans through lean hooks (bot.trace_stores:",
    "  no span outside a trace or for the pool's reset, the statement's kind not its text,",
    "  leaf spans never made current)",
)


class TimedModel(InstantModel):
    """The instant model, answering after MODEL_SECONDS (the network wait of a real one)."""

    async def _agenerate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Any:
        await asyncio.sleep(MODEL_SECONDS)
        return await super()._agenerate(messages, stop, run_manager, **kw)


class EncodingExporter(SpanExporter):
    """The OTLP exporter's work without its network: each batch encoded to protobuf bytes,
    counted and dropped (keeping spans in memory would make the garbage collector, not
    the tracing, the figure)."""

    def __init__(self, names: Counter[str]) -> None:
        self.spans = 0
        self.bytes = 0
        self.names = names

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.bytes += len(encode_spans(spans).SerializeToString())
        self.spans += len(spans)
        self.names.update(span.name for span in spans)
        return SpanExportResult.SUCCESS


async def main() -> int:
    async with chat_bench() as bench:
        service, timed_service = (
            ChatOpsService(
                deps=bench.deps,
                runner=AgentRunner(model=model, config=RunnerConfig()),
                history_turns=12,
            )
            for model in (InstantModel(), TimedModel())
        )
        try:
            return await measure_all(bench, service, timed_service)
        finally:
            await service.drain()  # before the pool closes and the rows go
            await timed_service.drain()


async def measure_all(
    bench: ChatBench, service: ChatOpsService, timed_service: ChatOpsService
) -> int:
    sink = NullSink()

    async def say(i: int, on: ChatOpsService | None = None) -> None:
        await (on or service).handle(bench.message(i % IN_FLIGHT, f"t{i % 20}"), sink)

    async def serial(first: int) -> None:
        for i in range(first, first + BLOCK):
            await say(i)
            await service.drain()

    async def with_model(first: int) -> None:
        for i in range(first, first + BLOCK // 2):
            await say(i, timed_service)
            await timed_service.drain()

    async def in_flight(first: int) -> None:
        await asyncio.gather(*(say(first + k) for k in range(IN_FLIGHT)))
        await service.drain()

    cpu: dict[str, float] = {"off": 0.0, "on": 0.0}

    async def timed(
        side: str, block: Callable[[int], Awaitable[None]], first: int, size: int
    ) -> float:
        """Seconds for one block; tracing installed (fresh exporter) before, removed
        after, both outside the timed region."""
        tracing = None
        if side == "on":
            exporter = EncodingExporter(names)
            tracing = telemetry.install(BatchSpanProcessor(exporter), role="bench")
        start, start_cpu = time.perf_counter(), time.process_time()
        await block(first)
        took = time.perf_counter() - start
        cpu[side] += time.process_time() - start_cpu
        if tracing is not None:
            start_cpu = time.process_time()
            tracing.shutdown()  # flushes the batch into the exporter: its CPU counts
            cpu[side] += time.process_time() - start_cpu
            exported.append((exporter.spans, size))
        return took

    names: Counter[str] = Counter()  # span names exported, over every traced block
    exported: list[tuple[int, int]] = []  # (spans, messages) of each traced block
    freeze_startup_heap()  # what run_parts does once the parts have started
    for r in range(4):  # warm both paths (imports, plans, pools)
        await timed("off", serial, r * BLOCK, BLOCK)
        await timed("on", serial, r * BLOCK, BLOCK)
    spent: dict[str, float] = {"off": 0.0, "on": 0.0, "off-16": 0.0, "on-16": 0.0}
    for r in range(ROUNDS):
        # Small blocks, alternating which side goes first: a shared machine's load
        # swings hit both sides alike.
        for side in ("off", "on") if r % 2 == 0 else ("on", "off"):
            spent[side] += await timed(side, serial, r * BLOCK, BLOCK)
            spent[side + "-16"] += await timed(side, in_flight, r * IN_FLIGHT, IN_FLIGHT)
    messages = ROUNDS * BLOCK
    med = {
        "off": messages / spent["off"],
        "on": messages / spent["on"],
        "off-16": ROUNDS * IN_FLIGHT / spent["off-16"],
        "on-16": ROUNDS * IN_FLIGHT / spent["on-16"],
    }
    traced = sum(m for _, m in exported)
    spans_per_message = sum(n for n, _ in exported) / traced
    per_name = ", ".join(f"{name} {n / traced:.1f}" for name, n in names.most_common())
    counted = 4 * BLOCK + ROUNDS * (BLOCK + IN_FLIGHT)  # warm-up blocks included
    cpu_ms = {side: 1000 * cpu[side] / counted for side in ("off", "on")}
    waited: dict[str, float] = {"off": 0.0, "on": 0.0}
    for r in range(MODEL_ROUNDS):
        for side in ("off", "on") if r % 2 == 0 else ("on", "off"):
            waited[side] += await timed(side, with_model, r * BLOCK, BLOCK // 2)
    model_slower = waited["on"] / waited["off"]
    per_model = {side: 1000 * waited[side] / (MODEL_ROUNDS * BLOCK // 2) for side in waited}
    slower = med["off"] / med["on"]
    slower16 = med["off-16"] / med["on-16"]
    print(f"tracing benchmark: {ROUNDS} rounds of {BLOCK} serial and {IN_FLIGHT} concurrent")
    for line in CHANGES:
        print(f"  {line}")
    print(f"  messages per side, instant model; {spans_per_message:.1f} spans per message:")
    print(f"    {per_name}")
    print(f"  serial     : off {med['off']:7.1f} msg/s  on {med['on']:7.1f} msg/s  x{slower:.3f}")
    print(
        f"  {IN_FLIGHT} in flight: off {med['off-16']:7.1f} msg/s  on {med['on-16']:7.1f} msg/s"
        f"  x{slower16:.3f}"
    )
    print(
        f"  model answering in {MODEL_SECONDS * 1000:.0f} ms, serial: off"
        f" {per_model['off']:.1f} ms, on {per_model['on']:.1f} ms per message"
        f"  x{model_slower:.3f}"
    )
    print(
        f"  CPU of this process per message (the database and Redis servers excluded):"
        f" off {cpu_ms['off']:.2f} ms, on {cpu_ms['on']:.2f} ms"
        f" (x{cpu_ms['on'] / cpu_ms['off']:.3f})"
    )
    rows = [
        figure(
            "serial time per message, tracing on",
            1000 / med["on"],
            "ms",
            anchor="tracing off",
            anchor_value=1000 / med["off"],
            target=f"<= x{TARGET:.2f}",
            met=slower <= TARGET,
        ),
        figure(
            f"{IN_FLIGHT} in flight, time per message, tracing on",
            1000 / med["on-16"],
            "ms",
            anchor="tracing off",
            anchor_value=1000 / med["off-16"],
            target=f"<= x{TARGET:.2f}",
            met=slower16 <= TARGET,
        ),
        figure(
            f"serial time per message, model answering in {MODEL_SECONDS * 1000:.0f} ms,"
            " tracing on",
            per_model["on"],
            "ms",
            anchor="tracing off",
            anchor_value=per_model["off"],
            target=f"<= x{TARGET:.2f}",
            met=model_slower <= TARGET,
        ),
        figure(
            "spans per message (instant model), tracing on",
            spans_per_message,
            "spans",
        ),
        figure(
            "CPU per message (instant model), tracing on",
            cpu_ms["on"],
            "ms",
            anchor="tracing off",
            anchor_value=cpu_ms["off"],
        ),
    ]
    return 0 if record("tracing", rows) else 1


if __name__ == "__main__":
    raise SystemExit(event_loop.run(main()))
