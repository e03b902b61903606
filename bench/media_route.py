"""Media route benchmark: `/media/{token}` (token check, DB lookup, source opener) vs
Starlette's FileResponse of the same file (the anchor: what a plain static route does).

A sparse temporary file (default 512 MiB) is served by one uvicorn server in a child
process with both routes; the parent downloads it:

1. whole file: throughput of one GET, ours and the anchor in turn (`--rounds` rounds,
   medians), with the server's CPU seconds per GiB;
2. ranges: N GETs of 1 MiB at random offsets (what a ranged fetcher does), each offset
   asked of ours then of the anchor; mean and p95;
3. the server's RSS growth (sampled every 10 ms) over each route's whole-file GETs:
   streaming must not hold the file in memory.

Targets: whole-file throughput >= 80 % of the anchor's, range p95 <= 1.5x the anchor's,
server RSS growth < 64 MiB for a 512 MiB file (1 MiB pieces, some waiting in the
transport's write buffer; the anchor reads 64 KiB at a time, at ~4x our CPU a GiB).

    python bench/media_route.py [--size 512MiB] [--ranges 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from agent.media_links import MediaLinks  # noqa: E402
from bench._harness import MiB, parse_size, warm_page_cache  # noqa: E402
from bench.results import figure, record  # noqa: E402
from bot import event_loop  # noqa: E402
from storage import accounts, identity, posts  # noqa: E402
from storage.crypto import TokenCipher, generate_key_spec, parse_keys  # noqa: E402
from storage.db import Database, migrate  # noqa: E402


def _serve(dsn: str, key_spec: str, path: str, port: int) -> None:
    """Child process: one uvicorn server with /media/{token} and /anchor."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import FileResponse

    from agent.sources import SourceOpeners
    from bot.media_web import build_media_router

    db = Database(dsn=dsn, data_dir=Path(tempfile.gettempdir()))
    links = MediaLinks(
        cipher=TokenCipher(parse_keys(key_spec)), public_base_url="https://bench.example"
    )
    app = FastAPI()
    router = build_media_router(pool=lambda: db.pool, links=links, opener=SourceOpeners().open)
    app.include_router(router)

    @app.api_route("/anchor", methods=["GET", "HEAD"])
    async def anchor() -> FileResponse:
        return FileResponse(path, media_type="video/mp4")

    async def main() -> None:
        await db.open()
        config = uvicorn.Config(app, port=port, log_level="warning", access_log=False)
        await uvicorn.Server(config).serve()

    event_loop.run(main())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssPeak:
    """Samples a process's RSS every 10 ms; `growth` is peak minus the starting value."""

    def __init__(self, pid: int) -> None:
        self.pid, self.start, self.peak = pid, rss(pid), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.start)


async def whole(client: httpx.AsyncClient, url: str, size: int) -> float:
    started = time.perf_counter()
    got = 0
    async with client.stream("GET", url) as response:
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_raw(MiB):
            got += len(chunk)
    assert got == size, (got, size)
    return size / (time.perf_counter() - started) / MiB


async def ranged(client: httpx.AsyncClient, url: str, offset: int) -> float:
    """Seconds for one GET of the MiB at `offset`."""
    started = time.perf_counter()
    response = await client.get(url, headers={"Range": f"bytes={offset}-{offset + MiB - 1}"})
    assert response.status_code == 206 and len(response.content) == MiB
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("512MiB"))
    parser.add_argument("--ranges", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="whole-file rounds (median)")
    args = parser.parse_args()
    rounds = max(1, args.rounds)

    with tempfile.TemporaryDirectory(prefix="socialops-bench-") as tmp:
        video = Path(tmp) / "clip.mp4"
        with open(video, "wb") as fh:  # sparse: nothing is written to disk
            fh.truncate(args.size)
        db = Database(dsn=os.environ.get("DATABASE_URL"), data_dir=Path(tmp))
        await db.open()
        try:
            await migrate(db.pool)
            key_spec = generate_key_spec("bench")
            cipher = TokenCipher(parse_keys(key_spec))
            who = await identity.resolve(
                db.pool,
                frontend="local",
                workspace_external_id="Wbench" + secrets.token_hex(3),
                user_external_id="Ubench",
            )
            async with db.pool.acquire() as conn:
                account = await accounts.upsert_linked(
                    conn,
                    cipher=cipher,
                    workspace_id=who.workspace_id,
                    owner_id=who.chat_user_id,
                    platform="instagram",
                    external_id="bench-" + secrets.token_hex(4),
                    handle="bench",
                    scopes=[],
                    token={"access_token": "bench"},
                    expires_at=None,
                )
            post, _ = await posts.create_or_get(
                db.pool,
                account_id=account.id,
                platform="instagram",
                idempotency_key="bench-" + secrets.token_hex(6),
                title="bench",
                caption="",
                source={"kind": "file", "path": str(video), "mime_type": "video/mp4"},
                metadata={},
                bytes_total=args.size,
            )
            token = MediaLinks(cipher=cipher, public_base_url="https://x").sign(
                post.id, post.source
            )

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            ctx = multiprocessing.get_context("spawn")
            child = ctx.Process(
                target=_serve, args=(db.dsn, key_spec, str(video), port), daemon=True
            )
            child.start()
            base = f"http://127.0.0.1:{port}"
            try:
                async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                    for _ in range(300):
                        try:
                            if (await client.head("/anchor")).status_code == 200:
                                break
                        except httpx.TransportError:
                            await asyncio.sleep(0.1)
                    routes = {"/media/{token}": f"/media/{token}", "anchor FileResponse": "/anchor"}
                    # Warm both routes (DB connection, imports) and the page cache.
                    for url in routes.values():
                        await client.get(url, headers={"Range": "bytes=0-1023"})
                    await asyncio.to_thread(warm_page_cache, video)
                    rng = random.Random(7)
                    offsets = [rng.randrange(0, args.size - MiB) for _ in range(args.ranges)]
                    print(
                        f"file {args.size / MiB:.0f} MiB, {rounds} whole-file rounds,"
                        f" {args.ranges} ranged GETs of 1 MiB, server pid {child.pid}"
                    )
                    assert child.pid is not None
                    speeds: dict[str, list[float]] = {name: [] for name in routes}
                    cpu: dict[str, list[float]] = {name: [] for name in routes}
                    times: dict[str, list[float]] = {name: [] for name in routes}
                    growth = dict.fromkeys(routes, 0)
                    for _ in range(rounds):
                        for name, url in routes.items():
                            with RssPeak(child.pid) as peak:
                                before = cpu_seconds(child.pid)
                                speeds[name].append(await whole(client, url, args.size))
                                cpu[name].append(cpu_seconds(child.pid) - before)
                            growth[name] = max(growth[name], peak.growth)
                    for offset in offsets:
                        for name, url in routes.items():
                            times[name].append(await ranged(client, url, offset))
            finally:
                child.terminate()
                child.join(10)
        finally:
            await db.close()

    print(
        f"{'route':22} {'whole MiB/s':>12} {'CPU s/GiB':>10} {'range mean ms':>14}"
        f" {'range p95 ms':>13} {'RSS growth MiB':>15}"
    )
    gib = args.size / (1024 * MiB)
    result: dict[str, dict[str, float]] = {}
    for name in routes:
        result[name] = {
            "speed": statistics.median(speeds[name]),
            "mean": 1000 * statistics.fmean(times[name]),
            "p95": 1000 * p95(times[name]),
        }
        print(
            f"{name:22} {result[name]['speed']:12.0f} {statistics.median(cpu[name]) / gib:10.2f}"
            f" {result[name]['mean']:14.2f} {result[name]['p95']:13.2f}"
            f" {growth[name] / MiB:15.1f}"
            f"   (whole: {', '.join(f'{v:.0f}' for v in speeds[name])} MiB/s)"
        )
    ours, anchor = result["/media/{token}"], result["anchor FileResponse"]
    speed_ratio = ours["speed"] / anchor["speed"]
    p95_ratio = ours["p95"] / anchor["p95"]
    rows = [
        figure(
            "media whole-file throughput",
            ours["speed"],
            "MiB/s",
            anchor="Starlette FileResponse",
            anchor_value=anchor["speed"],
            ratio=speed_ratio,
            target=">= 80 %",
            met=speed_ratio >= 0.8,
        ),
        figure(
            "media 1 MiB range p95",
            ours["p95"],
            "ms",
            anchor="Starlette FileResponse",
            anchor_value=anchor["p95"],
            ratio=p95_ratio,
            target="<= x1.5",
            met=p95_ratio <= 1.5,
        ),
        figure(
            "media 1 MiB range mean",
            ours["mean"],
            "ms",
            anchor="Starlette FileResponse",
            anchor_value=anchor["mean"],
        ),
        figure(
            "media server RSS growth, whole-file GETs",
            growth["/media/{token}"] / MiB,
            "MiB",
            target="< 64 MiB (not the file)",
            met=growth["/media/{token}"] < 64 * MiB,
        ),
    ]
    return 0 if record("media_route", rows) else 1


if __name__ == "__main__":
    raise SystemExit(event_loop.run(main()))
