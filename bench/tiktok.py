"""TikTok benchmark against the fake (run in a child process on loopback).

1. Metrics for 10, 100 and 1,000 posts: `post_metrics` batched 20 ids a call
   (ceil(n/20) video queries) vs one call per post (n), measured the same way; prints
   both and the ratio.
2. Upload: a sparse temporary file (default 256 MiB; nothing is written to disk) as
   one plain streaming httpx PUT (the physical limit here) vs `TikTokPlatform.upload`
   (creator info, init, chunked PUTs, status). Targets: ours >= 80 % of the plain PUT's
   throughput, RSS growth < 64 MiB (the uploader streams; 1 GiB with --size 1GiB).
   The two run interleaved, `--rounds` times each; each figure is the median.

    python bench/tiktok.py [--size 256MiB] [--chunk 32MiB] [--rounds 5]   # chunk: the product's default
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench._harness import (  # noqa: E402
    MiB,
    fake_in_child,
    interleaved,
    median_run,
    parse_size,
    plain_put,
    video_file,
)
from bench.results import figure, record  # noqa: E402
from bot import event_loop  # noqa: E402
from integrations.base import TokenSet, UploadRequest  # noqa: E402
from integrations.tiktok.platform import TikTokPlatform  # noqa: E402
from integrations.tiktok.plugin import CHUNK_BYTES, PLUGIN  # noqa: E402
from tests.fakes.google import MemoryCheckpoint  # noqa: E402
from tests.fakes.platforms import build  # noqa: E402
from tests.fakes.tiktok import ALL_SCOPES, FakeTikTok, run_standalone, tiktok_settings  # noqa: E402

SIZES = (10, 100, 1000)
TOKEN = TokenSet(access_token="bench-token", scopes=ALL_SCOPES)


class Calls:
    """Counts the requests a client sends (an httpx event hook)."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, request: httpx.Request) -> None:
        self.count += 1


async def metrics_bench(base: str, rounds: int) -> tuple[list[tuple[bool, str]], list[Any]]:
    calls = Calls()
    checks: list[tuple[bool, str]] = []
    rows: list[Any] = []
    async with httpx.AsyncClient(timeout=60, event_hooks={"request": [calls]}) as client:
        platform: TikTokPlatform = build(PLUGIN, client, **tiktok_settings(base, FakeTikTok()))
        account = await platform.profile(TOKEN)
        listed = [p.post_id for p in await platform.recent_posts(TOKEN, account, limit=SIZES[-1])]
        assert len(listed) == SIZES[-1], len(listed)
        print("metrics (median of rounds):")
        for size in SIZES:
            ids = listed[:size]

            async def batched() -> None:
                assert len(await platform.post_metrics(TOKEN, ids)) == len(ids)

            async def one_by_one() -> None:
                for post_id in ids:
                    assert len(await platform.post_metrics(TOKEN, [post_id])) == 1

            calls.count = 0
            _, batched_s = await median_run(rounds, batched)
            batched_calls = calls.count // rounds
            calls.count = 0
            _, single_s = await median_run(rounds, one_by_one)
            single_calls = calls.count // rounds
            print(
                f"  {size:5d} posts: batched {batched_calls:4d} calls {batched_s * 1000:8.1f} ms"
                f"   one call per post {single_calls:5d} calls {single_s * 1000:8.1f} ms"
                f"   ({single_s / batched_s:.1f}x time)"
            )
            expected = math.ceil(size / 20)
            checks.append(
                (
                    batched_calls == expected,
                    f"{size} posts: batched metrics use {batched_calls} calls (target {expected})",
                )
            )
            rows.append(
                figure(
                    f"post metrics, {size} posts: HTTP calls",
                    batched_calls,
                    "calls",
                    anchor="one call per post",
                    anchor_value=single_calls,
                    target=f"= {expected}",
                    met=batched_calls == expected,
                )
            )
            rows.append(
                figure(
                    f"post metrics, {size} posts: wall time",
                    batched_s * 1000,
                    "ms",
                    anchor="one call per post",
                    anchor_value=single_s * 1000,
                )
            )
    return checks, rows


async def upload_bench(
    base: str, size: int, chunk: int, rounds: int
) -> tuple[list[tuple[bool, str]], list[Any]]:
    with tempfile.TemporaryDirectory(prefix="socialops-bench-") as tmp:
        source = video_file(Path(tmp), size)
        async with httpx.AsyncClient(timeout=120) as client:

            async def plain() -> None:
                await plain_put(client, base, source)

            settings = tiktok_settings(base, FakeTikTok(), tiktok_chunk_bytes=chunk)
            platform: TikTokPlatform = build(PLUGIN, client, **settings)

            async def ours() -> None:
                await platform.upload(
                    TOKEN,
                    source,
                    UploadRequest(title="bench", privacy="private"),
                    checkpoint=MemoryCheckpoint(),
                )

            print(f"upload of {size / MiB:.0f} MiB, chunk {chunk / MiB:g} MiB:")
            runs = {"plain httpx PUT (limit)": plain, "ours (TikTok chunked)": ours}
            done = await interleaved(size, runs, rounds)
    plain_rate, ours_rate = (done[label]["mib_s"] for label in runs)
    rss = done["ours (TikTok chunked)"]["rss"]
    ratio = ours_rate / plain_rate
    rows = [
        figure(
            f"upload {size / MiB:.0f} MiB: throughput",
            ours_rate,
            "MiB/s",
            anchor="plain httpx PUT",
            anchor_value=plain_rate,
            target=">= x0.80",
            met=ratio >= 0.8,
        ),
        figure(
            f"upload {size / MiB:.0f} MiB: RSS growth",
            rss / MiB,
            "MiB",
            target="< 64 MiB",
            met=rss < 64 * MiB,
        ),
    ]
    return [
        (ratio >= 0.8, f"ours / plain PUT throughput = {ratio:.0%} (target >= 80 %)"),
        (rss < 64 * MiB, f"ours RSS growth = {rss / MiB:.1f} MiB (target < 64 MiB)"),
    ], rows


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=256 * MiB)
    parser.add_argument("--chunk", type=parse_size, default=CHUNK_BYTES)
    parser.add_argument("--rounds", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args()
    async with fake_in_child(run_standalone) as server:
        checks, rows = await metrics_bench(server.base, max(1, args.rounds))
        more, upload_rows = await upload_bench(
            server.base, args.size, args.chunk, max(1, args.rounds)
        )
    print("targets:")
    for ok, text in checks + more:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    return 0 if record("tiktok", rows + upload_rows) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(event_loop.run(main()))
