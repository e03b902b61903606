"""Benchmark: our Redis limiter vs the `limits` library's moving window, same Redis, same run.

    python bench/ratelimit.py

Uses REDIS_URL when set, else an embedded Redis on a temporary directory. Reports
the median over alternating rounds of decisions per second (32 concurrent callers) and
p50/p99 latency (one caller at a time) for:

* one limit per decision: `Budgets.pace` (a Decision with remaining, retry
  time and reset) vs `MovingWindowRateLimiter.hit` (yes/no only), and vs `hit` plus
  `get_window_stats` on refusal, which is what a reply saying when to retry needs;
* a chat message (per-user + per-workspace limits): `Budgets.check_message` (one
  atomic script) vs two `limits` hits (two round trips, not atomic);
* a message to the agent: `Budgets.admit_run` (message rates, the user's run slot and
  the run's token reservation in one script) vs the three round trips it replaced
  (the rate check, `SET NX PX` on the slot, a script call on the two token days);
* the same admission through the limiter's script client (`storage.redis_wire`) vs
  through redis-py (the client it replaced: no socket timeouts, no retries): this
  process's CPU per call, one caller at a time (Redis runs in another process, so
  this is the client's and the limiter's own cost), and admissions per second.

Workload: 1,000 keys at 20/minute (users; 50 workspaces at 300/minute), picked at random,
so decisions mix admits and refusals.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import limits
import redis.asyncio as aioredis
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bench.results import figure, record
from bot import event_loop
from storage.ratelimit import Budgets, LimitPolicy, Rate
from storage.ratelimit.counters import Counter
from storage.ratelimit.fallback import Outage
from storage.ratelimit.ledger import Ledger
from storage.redis import RedisHandle
from storage.redis_wire import Arg, Reply

ROUNDS = 5  # ours and limits alternate, so background load hits both alike
SEQUENTIAL = 1000  # per round, for latency
CONCURRENT_TOTAL = 4800  # per round, for throughput
CONCURRENCY = 32
KEYS = 1000

Op = Callable[[int], Awaitable[object]]


async def latency(op: Op, n: int) -> tuple[list[float], float]:
    """Each call's wall time, and this process's CPU time over them all."""
    samples = []
    cpu = time.process_time()
    for _ in range(n):
        start = time.perf_counter()
        await op(random.randrange(KEYS))
        samples.append(time.perf_counter() - start)
    return samples, time.process_time() - cpu


async def throughput(op: Op, total: int, concurrency: int) -> float:
    per_worker = total // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await op(random.randrange(KEYS))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return per_worker * concurrency / (time.perf_counter() - start)


async def compare(ours: Op, theirs: Op) -> tuple[dict[str, float], dict[str, float]]:
    """Alternate rounds of both; median throughput and serial CPU per call, p50/p99 over
    all latency samples."""
    ops = {"ours": ours, "theirs": theirs}
    for op in ops.values():
        for i in range(300):  # warm up: scripts loaded, connections open
            await op(i % KEYS)
    samples: dict[str, list[float]] = {name: [] for name in ops}
    cpus: dict[str, list[float]] = {name: [] for name in ops}
    rates: dict[str, list[float]] = {name: [] for name in ops}
    for r in range(ROUNDS):
        order = list(ops) if r % 2 == 0 else list(reversed(ops))
        for name in order:
            walls, cpu = await latency(ops[name], SEQUENTIAL)
            samples[name] += walls
            cpus[name].append(cpu / SEQUENTIAL)
            rates[name].append(await throughput(ops[name], CONCURRENT_TOTAL, CONCURRENCY))
    out = []
    for name in ops:
        s = sorted(samples[name])
        out.append(
            {
                "p50_ms": statistics.median(s) * 1000,
                "p99_ms": s[int(len(s) * 0.99)] * 1000,
                "per_s": statistics.median(rates[name]),
                "cpu_us": statistics.median(cpus[name]) * 1e6,
            }
        )
    return out[0], out[1]


def show(
    title: str,
    ours: dict[str, float],
    theirs: dict[str, float],
    labels: tuple[str, str] = ("socialops sliding log (Redis TIME)", "limits moving window"),
) -> list[dict[str, object]]:
    """Print one comparison; its rows for results.json (p99 target: under 2 ms)."""
    print(f"\n{title}")
    print(f"  {'':34} {'decisions/s':>12} {'p50 ms':>8} {'p99 ms':>8}")
    for label, r in zip(labels, (ours, theirs), strict=True):
        print(f"  {label:34} {r['per_s']:12,.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f}")
    print(
        f"  ratio ours/{labels[1]}: {ours['per_s'] / theirs['per_s']:.2f}x throughput, "
        f"p99 {ours['p99_ms']:.3f} ms (target < 2 ms)"
    )
    return [
        figure(
            f"{title}: decisions/s",
            ours["per_s"],
            "/s",
            anchor=labels[1],
            anchor_value=theirs["per_s"],
        ),
        figure(
            f"{title}: p99",
            ours["p99_ms"],
            "ms",
            anchor=labels[1],
            anchor_value=theirs["p99_ms"],
            target="< 2 ms",
            met=ours["p99_ms"] < 2,
        ),
    ]


class RedisPyScripts:
    """The limiter's script calls through redis-py, as before `storage.redis_wire`: one
    pooled client with no socket timeouts and no retries (the anchor)."""

    def __init__(self, url: str) -> None:
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=None,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )

    async def call(self, *args: Arg) -> Reply:
        reply: Reply = await self._client.execute_command(*args)
        return reply

    async def close(self) -> None:
        await self._client.aclose()


class RedisPyHandle(RedisHandle):
    """A handle whose script client is redis-py's (same server, same key prefix)."""

    def __init__(self, handle: RedisHandle) -> None:
        super().__init__(url=handle.url, data_dir=Path(), key_prefix=handle.key_prefix)
        self._via_redis_py = RedisPyScripts(handle.url)

    @property
    def scripts(self) -> RedisPyScripts:  # type: ignore[override]
        return self._via_redis_py


async def script_client(handle: RedisHandle, roomy: LimitPolicy) -> list[dict[str, object]]:
    """The agent message's admission through our script client vs through redis-py."""
    anchor = RedisPyHandle(handle)
    ours = Budgets(redis=handle, policy=roomy)
    theirs = Budgets(redis=anchor, policy=roomy)

    async def via_wire(k: int) -> object:
        return await ours.admit_run(workspace_id=k % 50, chat_user_id=k, tokens=100, ttl=1)

    async def via_redis_py(k: int) -> object:
        return await theirs.admit_run(workspace_id=k % 50, chat_user_id=k, tokens=100, ttl=1)

    try:
        wire, redis_py = await compare(via_wire, via_redis_py)
    finally:
        await anchor.scripts.close()
    title = "agent message admission, script client"
    labels = ("storage.redis_wire", "redis-py (before)")
    rows = show(title, wire, redis_py, labels=labels)
    print(
        f"  client CPU per call, one at a time: {wire['cpu_us']:.0f} us vs "
        f"{redis_py['cpu_us']:.0f} us ({wire['cpu_us'] / redis_py['cpu_us']:.2f}x)"
    )
    rows.append(
        figure(
            f"{title}: CPU per call, serial",
            wire["cpu_us"],
            "us",
            anchor=labels[1],
            anchor_value=redis_py["cpu_us"],
        )
    )
    return rows


async def main() -> int:
    url = os.environ.get("REDIS_URL")
    data_dir = Path(tempfile.mkdtemp(prefix="bench-ratelimit-"))
    prefix = f"bench-rl:{os.getpid()}:"
    handle = RedisHandle(url=url, data_dir=data_dir, key_prefix=prefix)
    await handle.open()
    where = "REDIS_URL" if url else "embedded redis (unix socket)"
    try:
        policy = LimitPolicy(
            user_messages="20/minute",
            workspace_messages="300/minute",
            user_llm_tokens_per_day=1,
            workspace_llm_tokens_per_day=1,
        )
        budgets = Budgets(redis=handle, policy=policy)
        scheme = handle.url.replace("redis://", "async+redis://", 1)
        scheme = scheme.replace("rediss://", "async+rediss://", 1)
        scheme = scheme.replace("unix://", "async+redis+unix://", 1)
        storage = RedisStorage(scheme, implementation="redispy", key_prefix=prefix + "limits")
        limiter = MovingWindowRateLimiter(storage)
        item = limits.parse("20/minute")
        pace_rate = Rate.parse("20/minute")
        workspace_item = limits.parse("300/minute")

        async def ours_one(k: int) -> object:
            return await budgets.pace(f"p{k}", pace_rate)

        async def theirs_one(k: int) -> object:
            return await limiter.hit(item, "p", str(k))

        async def theirs_one_with_retry(k: int) -> object:
            # What a chat reply needs from `limits` on refusal: when to retry (2nd round trip).
            if await limiter.hit(item, "p", str(k)):
                return True
            return await limiter.get_window_stats(item, "p", str(k))

        async def ours_chat(k: int) -> object:
            return await budgets.check_message(workspace_id=k % 50, chat_user_id=k)

        async def theirs_chat(k: int) -> object:
            if await limiter.hit(item, "u", str(k)):
                return await limiter.hit(workspace_item, "w", str(k % 50))
            return False

        # Admitting a message to the agent: limits that admit, so the whole script runs.
        roomy_policy = LimitPolicy(
            user_messages="1000000/minute",
            workspace_messages="1000000/minute",
            user_llm_tokens_per_day=10**12,
            workspace_llm_tokens_per_day=10**12,
        )
        roomy = Budgets(redis=handle, policy=roomy_policy)

        # The third round trip: the script call that charged the two token days.
        tokens = Ledger(
            redis=handle, outage=Outage(1.0), call_timeout=0.5, clock=lambda: datetime.now(UTC)
        )

        async def admit(k: int) -> object:
            return await roomy.admit_run(workspace_id=k % 50, chat_user_id=k, tokens=100, ttl=1)

        async def three_calls(k: int) -> object:
            # What a message to the agent cost before: three sequential round trips.
            await roomy.check_message(workspace_id=k % 50, chat_user_id=k)
            slot = handle.key("run", f"{{w{k % 50}}}", f"u{k}")
            await handle.client.set(slot, "x", nx=True, px=1000)
            tag = f"llm:{{w{k % 50}}}"
            days = [
                Counter("llm_tokens", f"{tag}:u{k}", 10**12, 100),
                Counter("llm_tokens", tag, 10**12, 100),
            ]
            await tokens.run("charge", days)
            return None

        print(f"rate limiter benchmark on {where}, python {sys.version.split()[0]}")
        rows = show(
            "one limit per decision (limits: yes/no only)", *await compare(ours_one, theirs_one)
        )
        rows += show(
            "one limit, with the retry time on refusal",
            *await compare(ours_one, theirs_one_with_retry),
        )
        rows += show(
            "chat message: user + workspace limits", *await compare(ours_chat, theirs_chat)
        )
        admitted, before = await compare(admit, three_calls)
        rows += show(
            "agent message: rates + run slot + tokens",
            admitted,
            before,
            labels=("admit_run (one script)", "three calls (before)"),
        )
        rows.append(
            figure(
                "agent message admission p50",
                admitted["p50_ms"],
                "ms",
                anchor="three calls (before)",
                anchor_value=before["p50_ms"],
            )
        )
        rows += await script_client(handle, roomy_policy)
        return 0 if record("ratelimit", rows) else 1
    finally:
        async for key in handle.client.scan_iter(match=prefix + "*", count=1000):
            await handle.client.delete(key)
        await handle.close()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(event_loop.run(main()))
