"""X: batched metrics vs one call per post, and upload throughput and memory, against the fake.

Run from the repo root: `python bench/x.py [--size 64MiB]`. Needs no database or Redis.

1. Metrics for 200 posts: `XPlatform.post_metrics` (100 ids a call, so 2 calls) vs the
   anchor, one `GET /2/tweets?ids=<id>` per post, same server, same run.
2. Upload: the chunked uploader (initialize, 4 MiB appends, finalize, post) vs the
   anchor, one plain streaming httpx PUT of the same bytes to a sink on the same
   server. Target: at least 80 % of the anchor's throughput.
3. Memory: peak RSS growth during the upload of a file streamed from disk. Target:
   under 64 MiB. X takes videos up to 512 MB, so `--size` stops there (the 1 GiB
   figure of the YouTube bench does not apply).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn

from integrations.base import TokenSet, UploadRequest
from integrations.x.plugin import PLUGIN
from tests.fakes.platforms import build
from tests.fakes.x import FakeX, x_settings

POSTS = 200
PIECE = 1024 * 1024
SINK = "/bench/sink"


class FileSource:
    """A ByteSource reading a file from disk in 1 MiB pieces."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.mime_type = "video/mp4"

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        with self.path.open("rb") as f:
            f.seek(offset)
            while piece := f.read(PIECE):
                yield piece


class Checkpoint:
    def __init__(self) -> None:
        self.session: str | None = None
        self.confirmed = 0

    async def load(self) -> tuple[str | None, int]:
        return self.session, self.confirmed

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        self.session, self.confirmed = session_uri, confirmed


def with_sink(fake: FakeX) -> Any:
    """The fake, plus a PUT sink that drains and counts (the throughput anchor)."""
    received = {"bytes": 0}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == SINK:
            while True:
                message = await receive()
                received["bytes"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await fake(scope, receive, send)

    app.received = received  # type: ignore[attr-defined]
    return app


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve `app` on loopback with TCP_NODELAY (accepted sockets inherit it).

    Without it, uvicorn's separate writes of response head and body meet Nagle and the
    peer's delayed ACK: about 40 ms per request on Linux loopback, which would measure
    the kernel, not the uploader.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _serve_in_child(port_out: Any, ready: Any) -> None:
    """A FakeX (with the sink) in its own process, so the client's CPU and RSS are its own."""
    from twitter_text import parse_tweet

    from tests.fakes.x import AccessGrant

    parse_tweet("warm up")  # compile twitter-text's patterns before anything is timed
    fake = FakeX()
    fake.plan_processing(pending=0, in_progress=0)
    user = fake.add_user("bench")
    fake.access["bench-token"] = AccessGrant(
        user.id, {"media.write", "tweet.write", "tweet.read", "users.read"}, 4e9
    )

    async def run() -> None:
        async with serve(with_sink(fake)) as base:
            port_out.send(base)
            await asyncio.to_thread(ready.wait)  # until the parent is done

    asyncio.run(run())


def parse_size(text: str) -> int:
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "b": 1}
    lowered = text.strip().lower()
    for unit, factor in units.items():
        if lowered.endswith(unit):
            return int(float(lowered.removesuffix(unit)) * factor)
    return int(lowered)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def main(size: int) -> None:
    fake = FakeX()
    user = fake.add_user("bench")
    ids = [fake.add_post(user, f"post {i}", public={"like_count": i}).id for i in range(POSTS)]
    token = TokenSet(access_token=fake.issue_tokens(user)["access_token"])
    async with serve(fake) as base, httpx.AsyncClient(timeout=120) as http:
        platform = build(PLUGIN, http, **x_settings(base, fake))

        started = time.perf_counter()
        before = fake.requests["GET /2/tweets"]
        found = await platform.post_metrics(token, ids)
        ours_calls = fake.requests["GET /2/tweets"] - before
        ours_time = time.perf_counter() - started
        assert len(found) == POSTS
        started = time.perf_counter()
        before = fake.requests["GET /2/tweets"]
        headers = {"Authorization": f"Bearer {token.access_token}"}
        for post_id in ids:
            answer = await http.get(
                f"{base}/2/tweets",
                params={"ids": post_id, "tweet.fields": "public_metrics"},
                headers=headers,
            )
            answer.raise_for_status()
        naive_calls = fake.requests["GET /2/tweets"] - before
        naive_time = time.perf_counter() - started
        print(f"metrics for {POSTS} posts")
        print(f"  batched     {ours_calls:4d} calls  {ours_time * 1000:8.1f} ms")
        print(f"  one-by-one  {naive_calls:4d} calls  {naive_time * 1000:8.1f} ms")
        print(f"  calls ratio {naive_calls / ours_calls:.0f}x fewer")

    # Upload: against a fake in another process, so both sides have their own CPU and memory.
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    done = context.Event()
    child = context.Process(target=_serve_in_child, args=(sender, done), daemon=True)
    child.start()
    try:
        base = receiver.recv()
        async with httpx.AsyncClient(timeout=120) as http:
            fake = FakeX()  # settings only: the client talks to the child's fake at `base`
            platform = build(PLUGIN, http, **x_settings(base, fake, x_upload_segment_bytes=4 << 20))
            token = TokenSet(access_token="bench-token")
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "video.mp4"
                with path.open("wb") as f:
                    for _ in range(0, size, PIECE):
                        f.write(os.urandom(PIECE))
                    f.truncate(size)
                source = FileSource(path)

                async def body() -> AsyncIterator[bytes]:
                    async for piece in source.open():
                        yield piece

                started = time.perf_counter()
                response = await http.put(f"{base}{SINK}", content=body())
                response.raise_for_status()
                plain = size / (time.perf_counter() - started)

                rss_before = rss_mib()
                started = time.perf_counter()
                request = UploadRequest(title=f"bench {time.time()}", privacy="public")
                result = await platform.upload(token, source, request, checkpoint=Checkpoint())
                ours = size / (time.perf_counter() - started)
                growth = rss_mib() - rss_before
    finally:
        done.set()
        child.join(10)
    assert result.post_id
    print(f"upload of {size / 2**20:.0f} MiB (fake in another process)")
    print(f"  chunked upload  {ours / 2**20:8.1f} MiB/s")
    print(f"  plain PUT       {plain / 2**20:8.1f} MiB/s")
    print(f"  ratio           {ours / plain:8.0%} (target >= 80 %)")
    print(f"  peak RSS growth {growth:8.1f} MiB (target < 64 MiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="64MiB", help="video size, up to 512MiB")
    size = parse_size(parser.parse_args().size)
    if not 0 < size <= 512 * 1024**2:
        parser.error("X takes videos up to 512 MiB")
    asyncio.run(main(size))
