"""TikTok benchmark against the fake (run in a child process on loopback).

1. Metrics for 200 posts: `post_metrics` batched 20 ids a call (ceil(200/20) = 10
   video queries) vs one call per post (200), measured the same way; prints both and
   the ratio.
2. Upload: a sparse temporary file (default 256 MiB; nothing is written to disk) as
   one plain streaming httpx PUT (the physical limit here) vs `TikTokPlatform.upload`
   (creator info, init, chunked PUTs, status). Targets: ours >= 80 % of the plain PUT's
   throughput, RSS growth < 64 MiB (the uploader streams; 1 GiB with --size 1GiB).

    python bench/tiktok.py [--size 256MiB] [--chunk 16MiB] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from agent.sources import FileByteSource  # noqa: E402
from integrations.base import TokenSet, UploadRequest  # noqa: E402
from integrations.tiktok.platform import TikTokPlatform  # noqa: E402
from integrations.tiktok.plugin import PLUGIN  # noqa: E402
from tests.fakes.google import MemoryCheckpoint  # noqa: E402
from tests.fakes.platforms import build  # noqa: E402
from tests.fakes.tiktok import ALL_SCOPES, FakeTikTok, run_standalone, tiktok_settings  # noqa: E402

MiB = 1024 * 1024
POSTS = 200
TOKEN = TokenSet(access_token="bench-token", scopes=ALL_SCOPES)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}")
    unit = (match.group(2) or "").upper()[:1]
    return int(match.group(1)) * {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB}[unit]


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssPeak:
    """Samples this process's RSS every 10 ms; `growth` is the peak minus the start."""

    def __init__(self) -> None:
        self.start = rss_bytes()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(
                    f"{base}/v2/user/info/",
                    params={"fields": "open_id"},
                    headers={"Authorization": "Bearer bench-token"},
                )
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("fake server did not start")


class Calls:
    """Counts the requests a client sends (an httpx event hook)."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, request: httpx.Request) -> None:
        self.count += 1


async def best_of(rounds: int, run: Callable[[], Awaitable[Any]]) -> tuple[float, int]:
    """Best wall time of `rounds` runs, and the worst RSS growth seen."""
    best, worst = math.inf, 0
    for _ in range(rounds):
        with RssPeak() as rss:
            started = time.perf_counter()
            await run()
            best = min(best, time.perf_counter() - started)
        worst = max(worst, rss.growth)
    return best, worst


async def metrics_bench(base: str, rounds: int) -> tuple[bool, str]:
    calls = Calls()
    async with httpx.AsyncClient(timeout=60, event_hooks={"request": [calls]}) as client:
        platform: TikTokPlatform = build(PLUGIN, client, **tiktok_settings(base, FakeTikTok()))
        account = await platform.profile(TOKEN)
        ids = [p.post_id for p in await platform.recent_posts(TOKEN, account, limit=POSTS)]
        assert len(ids) == POSTS, len(ids)

        async def batched() -> None:
            assert len(await platform.post_metrics(TOKEN, ids)) == POSTS

        async def one_by_one() -> None:
            for post_id in ids:
                assert len(await platform.post_metrics(TOKEN, [post_id])) == 1

        calls.count = 0
        batched_s, _ = await best_of(rounds, batched)
        batched_calls = calls.count // rounds
        calls.count = 0
        single_s, _ = await best_of(rounds, one_by_one)
        single_calls = calls.count // rounds
    print(f"metrics for {POSTS} posts:")
    print(f"  batched (20 ids a call)      {batched_calls:4d} calls  {batched_s * 1000:8.1f} ms")
    print(f"  one call per post            {single_calls:4d} calls  {single_s * 1000:8.1f} ms")
    print(
        f"  ratio                        {single_calls / batched_calls:4.0f}x calls  {single_s / batched_s:6.1f}x time"
    )
    expected = math.ceil(POSTS / 20)
    return (
        batched_calls == expected,
        f"batched metrics use {batched_calls} calls (target {expected})",
    )


async def upload_bench(base: str, size: int, chunk: int, rounds: int) -> list[tuple[bool, str]]:
    with tempfile.TemporaryDirectory(prefix="socialops-bench-") as tmp:
        path = Path(tmp) / "video.mp4"
        with open(path, "wb") as fh:
            fh.truncate(size)  # sparse: no disk writes, reads return zero pages
        source = FileByteSource(path, mime_type="video/mp4")
        async with httpx.AsyncClient(timeout=120) as client:

            async def plain() -> None:
                response = await client.put(
                    f"{base}/bench/sink",
                    content=source.open(0),
                    headers={"Content-Length": str(size), "Content-Type": "video/mp4"},
                )
                response.raise_for_status()
                if response.json()["received"] != size:
                    raise RuntimeError("plain PUT lost bytes")

            settings = tiktok_settings(base, FakeTikTok(), tiktok_chunk_bytes=chunk)
            platform: TikTokPlatform = build(PLUGIN, client, **settings)

            async def ours() -> None:
                await platform.upload(
                    TOKEN,
                    source,
                    UploadRequest(title="bench", privacy="private"),
                    checkpoint=MemoryCheckpoint(),
                )

            plain_s, _ = await best_of(rounds, plain)
            ours_s, rss = await best_of(rounds, ours)
    plain_rate, ours_rate = size / MiB / plain_s, size / MiB / ours_s
    print(f"upload of {size / MiB:.0f} MiB, chunk {chunk / MiB:g} MiB:")
    print(f"  plain httpx PUT (limit)      {plain_s:7.2f} s  {plain_rate:8.1f} MiB/s")
    print(
        f"  ours (TikTok chunked)        {ours_s:7.2f} s  {ours_rate:8.1f} MiB/s  RSS +{rss / MiB:.1f} MiB"
    )
    ratio = ours_rate / plain_rate
    return [
        (ratio >= 0.8, f"ours / plain PUT throughput = {ratio:.0%} (target >= 80 %)"),
        (rss < 64 * MiB, f"ours RSS growth = {rss / MiB:.1f} MiB (target < 64 MiB)"),
    ]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=256 * MiB)
    parser.add_argument("--chunk", type=parse_size, default=16 * MiB)
    parser.add_argument("--rounds", type=int, default=2, help="runs per measurement (best kept)")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = multiprocessing.get_context("spawn").Process(
        target=run_standalone, args=(port,), daemon=True
    )
    server.start()
    try:
        await wait_ready(base)
        checks = [await metrics_bench(base, max(1, args.rounds))]
        checks += await upload_bench(base, args.size, args.chunk, max(1, args.rounds))
    finally:
        server.terminate()
        server.join(5)
    print("targets:")
    for ok, text in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(asyncio.run(main()))
