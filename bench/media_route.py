"""Media route benchmark: `/media/{token}` (token check, DB lookup, source opener) vs
Starlette's FileResponse of the same file (the anchor: what a plain static route does).

A sparse temporary file (default 512 MiB) is served by one uvicorn server in a child
process with both routes; the parent downloads it:

1. whole file: throughput of one GET, ours vs the anchor;
2. ranges: N GETs of 1 MiB at random offsets (what a ranged fetcher does), mean and p95;
3. the server's RSS growth (sampled every 10 ms) over each phase: streaming must not
   hold the file in memory.

    python bench/media_route.py [--size 512MiB] [--ranges 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import secrets
import socket
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
from bench._harness import MiB, parse_size  # noqa: E402
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

    asyncio.run(main())


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


async def ranges(client: httpx.AsyncClient, url: str, offsets: list[int]) -> tuple[float, float]:
    times = []
    for offset in offsets:
        started = time.perf_counter()
        response = await client.get(url, headers={"Range": f"bytes={offset}-{offset + MiB - 1}"})
        assert response.status_code == 206 and len(response.content) == MiB
        times.append(time.perf_counter() - started)
    times.sort()
    return 1000 * sum(times) / len(times), 1000 * times[int(0.95 * (len(times) - 1))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("512MiB"))
    parser.add_argument("--ranges", type=int, default=200)
    args = parser.parse_args()

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
                    # Warm both (page cache, DB connection) before measuring.
                    for url in routes.values():
                        await client.get(url, headers={"Range": "bytes=0-1023"})
                    rng = random.Random(7)
                    offsets = [rng.randrange(0, args.size - MiB) for _ in range(args.ranges)]
                    print(
                        f"file {args.size / MiB:.0f} MiB, {args.ranges} ranged GETs of 1 MiB, "
                        f"server pid {child.pid}"
                    )
                    print(
                        f"{'route':22} {'whole MiB/s':>12} {'range mean ms':>14} "
                        f"{'range p95 ms':>13} {'RSS growth MiB':>15}"
                    )
                    results = {}
                    for name, url in routes.items():
                        assert child.pid is not None
                        with RssPeak(child.pid) as peak:
                            speed = await whole(client, url, args.size)
                            mean, p95 = await ranges(client, url, offsets)
                        results[name] = speed
                        print(
                            f"{name:22} {speed:12.0f} {mean:14.2f} {p95:13.2f} "
                            f"{peak.growth / MiB:15.1f}"
                        )
                    ratio = results["/media/{token}"] / results["anchor FileResponse"]
                    print(f"ours / anchor whole-file throughput: {ratio:.2f}")
            finally:
                child.terminate()
                child.join(10)
        finally:
            await db.close()


if __name__ == "__main__":
    asyncio.run(main())
