"""Upload benchmark: our resumable uploader vs the physical limit vs google-api-python-client.

A sparse temporary file (default 1 GiB; nothing is written to disk) goes to the fake
Google server, which runs in a child process on loopback:

1. plain PUT: one httpx streaming PUT of the same bytes (the physical limit here);
2. ours: `YouTubePlatform.upload` (resumable, 8 MiB chunks, checkpoint per chunk);
3. google-api-python-client: `MediaFileUpload(resumable=True)` + `next_chunk()` in a
   thread (installed from the `bench` extra; skipped with a note if unavailable);
4. resume: ours again with the connection cut at 60 %; counts the bytes re-sent.

Prints throughput and peak RSS growth (sampled every 10 ms) for each, and checks the
targets: ours >= 80 % of plain PUT throughput, RSS growth < 64 MiB, resume re-sends
at most one chunk.

    python bench/upload.py [--size 1GiB] [--chunk 8MiB]
"""

from __future__ import annotations

import argparse
import asyncio
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
from integrations.http import Guards, make_client  # noqa: E402
from integrations.youtube.plugin import PLUGIN as YOUTUBE  # noqa: E402
from tests.fakes.google import MemoryCheckpoint, run_standalone, youtube_settings  # noqa: E402
from tests.fakes.platforms import build as build_platform  # noqa: E402

MiB = 1024 * 1024
TOKEN = "bench-token"


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
    """Samples this process's RSS in a thread; `growth` is peak minus the starting RSS."""

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
                await client.get(f"{base}/_fake/sessions")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("fake server did not start")


ROUNDS = 2


async def measure(
    label: str, size: int, run: Callable[[], Awaitable[Any]], rounds: int | None = None
) -> dict[str, Any]:
    """Best time of `rounds` runs (the machine is shared); RSS growth is the worst seen."""
    best: dict[str, Any] | None = None
    worst_rss = 0
    for _ in range(rounds or ROUNDS):
        with RssPeak() as rss:
            started = time.perf_counter()
            extra = await run()
            elapsed = time.perf_counter() - started
        worst_rss = max(worst_rss, rss.growth)
        if best is None or elapsed < best["seconds"]:
            best = {"label": label, "seconds": elapsed, "mib_s": size / MiB / elapsed}
            if isinstance(extra, dict):
                best.update(extra)
    assert best is not None
    best["rss"] = worst_rss
    print(
        f"  {label:<28} {best['seconds']:7.2f} s  {best['mib_s']:8.1f} MiB/s"
        f"  RSS +{worst_rss / MiB:6.1f} MiB",
        flush=True,
    )
    return best


async def plain_put(base: str, source: FileByteSource) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        response = await client.put(
            f"{base}/bench/sink",
            content=source.open(0),
            headers={"Content-Length": str(source.size), "Content-Type": source.mime_type},
        )
        response.raise_for_status()
        if response.json()["received"] != source.size:
            raise RuntimeError("plain PUT lost bytes")


class CountingTransport(httpx.AsyncHTTPTransport):
    """Counts the body bytes of every PUT we send (including ones the server never got)."""

    sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            # The declared length: an upper bound on what went out before a cut.
            self.sent += int(request.headers.get("Content-Length", 0))
        return await super().handle_async_request(request)


def youtube_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """YouTube's client as production builds it (retries, breaker, cap)."""
    return make_client(platform="youtube", guards=Guards(), transport=transport, timeout=120)


async def ours(
    base: str, source: FileByteSource, chunk: int, client: httpx.AsyncClient
) -> dict[str, Any]:
    from tests.fakes.google import FakeGoogle

    fake = FakeGoogle()  # only for its client id/secret in the config
    settings = youtube_settings(base, fake, youtube_upload_chunk_bytes=chunk)
    platform = build_platform(YOUTUBE, client, **settings)
    result = await platform.upload(
        TokenSet(access_token=TOKEN),
        source,
        UploadRequest(title="bench", privacy="private"),
        checkpoint=MemoryCheckpoint(),
    )
    return {"video": result.post_id}


def google_client_available() -> bool:
    """google-api-python-client comes from the `bench` extra (`make bench` installs it)."""
    try:
        import googleapiclient  # noqa: F401
    except ImportError:
        print("  google-api-python-client not installed: pip install -e '.[bench]'", flush=True)
        return False
    return True


def google_client_upload(base: str, path: str, chunk: int) -> None:
    import httplib2
    from googleapiclient.discovery import build
    from googleapiclient.http import MediaFileUpload

    class BearerHttp(httplib2.Http):  # type: ignore[misc]
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            # As googleapiclient.http.build_http does: 308 is "resume", not a redirect.
            self.redirect_codes = set(self.redirect_codes) - {308}

        def request(
            self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any
        ) -> Any:
            headers = dict(headers or {})
            headers["authorization"] = f"Bearer {TOKEN}"
            return super().request(uri, method, body=body, headers=headers, **kw)

    youtube = build(
        "youtube",
        "v3",
        http=BearerHttp(timeout=120),
        static_discovery=True,
        client_options={"api_endpoint": base + "/"},
    )
    media = MediaFileUpload(path, mimetype="video/mp4", chunksize=chunk, resumable=True)
    request = youtube.videos().insert(
        part="snippet,status", body={"snippet": {"title": "bench"}, "status": {}}, media_body=media
    )
    # The discovery document's upload URL is https on Google's host; point it at the fake.
    query = request.uri.split("?", 1)[1]
    request.uri = f"{base}/upload/youtube/v3/videos?{query}"
    response = None
    while response is None:
        _, response = request.next_chunk()
    if not response.get("id"):
        raise RuntimeError("google-api-python-client upload returned no id")


async def resume_after_cut(base: str, source: FileByteSource, chunk: int) -> dict[str, Any]:
    cut = int(source.size * 0.6)
    async with httpx.AsyncClient() as control:
        await control.post(f"{base}/_fake/faults", json={"drop_at_byte": cut})
    counting = CountingTransport()
    async with youtube_client(counting) as client:
        await ours(base, source, chunk, client)
        sent = counting.sent
    async with httpx.AsyncClient() as control:
        sessions = (await control.get(f"{base}/_fake/sessions")).json()
    last = sessions[-1]
    return {
        "resent": sent - source.size,
        "cut": cut,
        "status_queries": last["status_queries"],
        "received": last["received"],
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=1024 * MiB)
    parser.add_argument("--chunk", type=parse_size, default=8 * MiB)
    parser.add_argument("--rounds", type=int, default=2, help="runs per uploader (best kept)")
    parser.add_argument("--no-google-client", action="store_true")
    args = parser.parse_args()
    global ROUNDS
    ROUNDS = max(1, args.rounds)
    size, chunk = args.size, args.chunk

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ctx = multiprocessing.get_context("spawn")
    server = ctx.Process(
        target=run_standalone, args=(port,), kwargs={"hash_uploads": False}, daemon=True
    )
    server.start()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="socialops-bench-") as tmp:
        path = Path(tmp) / "video.mp4"
        with open(path, "wb") as fh:
            fh.truncate(size)  # sparse: no disk writes, reads return zero pages
        source = FileByteSource(path, mime_type="video/mp4")
        try:
            await wait_ready(base)
            print(
                f"upload bench: {size / MiB:.0f} MiB, chunk {chunk / MiB:g} MiB, fake Google in pid {server.pid}"
            )
            results.append(
                await measure("plain httpx PUT (limit)", size, lambda: plain_put(base, source))
            )

            async def run_ours() -> dict[str, Any]:
                async with youtube_client() as client:
                    return await ours(base, source, chunk, client)

            results.append(await measure("ours (resumable)", size, run_ours))
            if not args.no_google_client and google_client_available():
                results.append(
                    await measure(
                        "google-api-python-client",
                        size,
                        lambda: asyncio.to_thread(google_client_upload, base, str(path), chunk),
                    )
                )
            else:
                print("  google-api-python-client      not available: skipped")
            resume = await measure(
                "ours, cut at 60 % + resume", size, lambda: resume_after_cut(base, source, chunk)
            )
        finally:
            server.terminate()
            server.join(5)

    plain, mine = results[0], results[1]
    ratio = mine["mib_s"] / plain["mib_s"]
    checks = [
        (f"ours / plain PUT throughput = {ratio:.0%} (target >= 80 %)", ratio >= 0.8),
        (
            f"ours RSS growth = {mine['rss'] / MiB:.1f} MiB (target < 64 MiB)",
            mine["rss"] < 64 * MiB,
        ),
        (
            f"resume after cut at byte {resume['cut']}: re-sent {resume['resent'] / MiB:.2f} MiB, "
            f"{resume['status_queries']} status query (target <= one chunk = {chunk / MiB:g} MiB)",
            0 <= resume["resent"] <= chunk and resume["received"] == size,
        ),
    ]
    print("targets:")
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(asyncio.run(main()))
