"""Upload benchmark: our resumable uploader vs the physical limit vs google-api-python-client.

A sparse temporary file (default 1 GiB; nothing is written to disk) goes to the fake
Google server, which runs in a child process on loopback:

1. plain PUT: one httpx streaming PUT of the same bytes (the physical limit here);
2. ours: `YouTubePlatform.upload` (resumable, in chunks of YouTube's production default
   size unless `--chunk` says otherwise) with the production checkpoint
   (`agent.ops.uploads.PostCheckpoint`: the session URI encrypted and the offset saved
   on the post's row in Postgres after every chunk);
3. google-api-python-client: `MediaFileUpload(resumable=True)` + `next_chunk()` in a
   thread, in chunks of the same size (installed from the `bench` extra; skipped with a
   note if unavailable);
4. resume: ours again with the connection cut at 60 %; counts the bytes re-sent.

The file is read through once first (page cache); 1-3 run interleaved (one of each per
round, `--rounds` rounds) and each reports its median, with this process's CPU seconds
per GiB (steadier than wall time on a shared machine); RSS growth (sampled every 10 ms)
is the worst seen. Targets: ours >= 80 % of the faster anchor's throughput, RSS growth
< 64 MiB, resume re-sends at most one chunk. Re-sent counts the body bytes the
connection took from us beyond the file's size: what was in flight when the cut came
(the socket buffers, ~10 MiB on loopback; the uploader resumes from the server's
offset, not from the chunk's start).
DATABASE_URL is used if set, else an embedded Postgres under a temporary directory.

    python bench/upload.py [--size 1GiB] [--chunk 32MiB] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from agent.context import AgentConfig  # noqa: E402
from agent.limits import NoLimits  # noqa: E402
from agent.ops.base import OpsBase  # noqa: E402
from agent.ops.uploads import PostCheckpoint  # noqa: E402
from agent.sources import FileByteSource  # noqa: E402
from bench._harness import (  # noqa: E402
    MiB,
    fake_in_child,
    interleaved,
    parse_size,
    plain_put,
    video_file,
    warm_page_cache,
)
from bench.results import figure, record  # noqa: E402
from bot import event_loop  # noqa: E402
from integrations.base import TokenSet, UploadRequest  # noqa: E402
from integrations.http import Guards, make_client  # noqa: E402
from integrations.registry import Platforms  # noqa: E402
from integrations.youtube.plugin import PLUGIN as YOUTUBE  # noqa: E402
from integrations.youtube.upload import DEFAULT_CHUNK_BYTES  # noqa: E402
from storage import accounts, identity, posts  # noqa: E402
from storage.crypto import TokenCipher, generate_key_spec, parse_keys  # noqa: E402
from storage.db import Database, migrate  # noqa: E402
from tests.fakes.google import run_standalone, youtube_settings  # noqa: E402
from tests.fakes.platforms import build as build_platform  # noqa: E402

TOKEN = "bench-token"


ROUNDS = 5


class Checkpoints:
    """A fresh post row and its production `PostCheckpoint` for every upload."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cipher = TokenCipher(parse_keys(generate_key_spec("bench")))
        self._account_id = 0
        self.workspace = f"bench-{uuid.uuid4().hex[:8]}"

    async def open(self) -> None:
        pool = self._db.pool
        ident = await identity.resolve(
            pool, frontend="local", workspace_external_id=self.workspace, user_external_id="u"
        )
        async with pool.acquire() as conn:
            account = await accounts.upsert_linked(
                conn,
                cipher=self._cipher,
                workspace_id=ident.workspace_id,
                owner_id=ident.chat_user_id,
                platform="youtube",
                external_id=f"UC{uuid.uuid4().hex}",
                handle="bench",
                scopes=[],
                token={"access_token": TOKEN},
                expires_at=None,
            )
        self._account_id = account.id
        self._ops = OpsBase(
            pool=pool,
            cipher=self._cipher,
            platforms=Platforms([]),
            budgets=NoLimits(),
            config=AgentConfig(),
        )

    async def new(self, size: int) -> PostCheckpoint:
        post, _ = await posts.create_or_get(
            self._db.pool,
            account_id=self._account_id,
            platform="youtube",
            idempotency_key=uuid.uuid4().hex,
            title="bench",
            caption=None,
            source={},
            metadata={},
            bytes_total=size,
        )
        return PostCheckpoint(self._ops, post_id=post.id)

    async def close(self) -> None:
        await self._db.pool.execute(
            "DELETE FROM workspaces WHERE frontend = 'local' AND external_id = $1", self.workspace
        )


class CountingTransport(httpx.AsyncHTTPTransport):
    """Counts the body bytes of every PUT that the connection took from us (including
    those a cut lost on the way). Not the declared Content-Length: a chunk cut short
    never sends the rest it declared."""

    sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            request.stream = _Counted(request.stream, self)
        return await super().handle_async_request(request)


class _Counted(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream | httpx.AsyncByteStream, counter: Any) -> None:
        assert isinstance(inner, httpx.AsyncByteStream)
        self._inner, self._counter = inner, counter

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._inner:
            self._counter.sent += len(piece)
            yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


def youtube_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """YouTube's client as production builds it (retries, breaker, cap)."""
    return make_client(platform="youtube", guards=Guards(), transport=transport, timeout=120)


async def ours(
    base: str,
    source: FileByteSource,
    chunk: int,
    client: httpx.AsyncClient,
    checkpoint: PostCheckpoint,
) -> dict[str, Any]:
    from tests.fakes.google import FakeGoogle

    fake = FakeGoogle()  # only for its client id/secret in the config
    settings = youtube_settings(base, fake, youtube_upload_chunk_bytes=chunk)
    platform = build_platform(YOUTUBE, client, **settings)
    result = await platform.upload(
        TokenSet(access_token=TOKEN),
        source,
        UploadRequest(title="bench", privacy="private"),
        checkpoint=checkpoint,
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


async def resume_after_cut(
    base: str, source: FileByteSource, chunk: int, checkpoints: Checkpoints
) -> dict[str, Any]:
    cut = int(source.size * 0.6)
    async with httpx.AsyncClient() as control:
        await control.post(f"{base}/_fake/faults", json={"drop_at_byte": cut})
    counting = CountingTransport()
    async with youtube_client(counting) as client:
        await ours(base, source, chunk, client, await checkpoints.new(source.size))
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
    parser.add_argument("--chunk", type=parse_size, default=DEFAULT_CHUNK_BYTES)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="interleaved rounds (median)")
    parser.add_argument("--no-google-client", action="store_true")
    args = parser.parse_args()
    size, chunk, rounds = args.size, args.chunk, max(1, args.rounds)

    async with fake_in_child(run_standalone, hash_uploads=False) as server:
        base = server.base
        with tempfile.TemporaryDirectory(prefix="socialops-bench-") as tmp:
            db = Database(dsn=os.environ.get("DATABASE_URL"), data_dir=Path(tmp))
            await db.open()
            await migrate(db.pool)
            checkpoints = Checkpoints(db)
            await checkpoints.open()
            source = video_file(Path(tmp), size)
            await asyncio.to_thread(warm_page_cache, source.path)
            try:
                print(
                    f"upload bench: {size / MiB:.0f} MiB, chunk {chunk / MiB:g} MiB,"
                    f" fake Google in pid {server.pid}, {rounds} interleaved rounds"
                )

                async def run_ours() -> dict[str, Any]:
                    async with youtube_client() as client:
                        return await ours(base, source, chunk, client, await checkpoints.new(size))

                async def run_plain() -> None:
                    async with httpx.AsyncClient(timeout=120) as client:
                        await plain_put(client, base, source)

                runs: dict[str, Callable[[], Awaitable[Any]]] = {
                    "plain httpx PUT (limit)": run_plain,
                    "ours (resumable)": run_ours,
                }
                if not args.no_google_client and google_client_available():
                    runs["google-api-python-client"] = lambda: asyncio.to_thread(
                        google_client_upload, base, str(source.path), chunk
                    )
                else:
                    print("  google-api-python-client      not available: skipped")
                results = await interleaved(size, runs, rounds)
                resume = await resume_after_cut(base, source, chunk, checkpoints)
            finally:
                await checkpoints.close()
                await db.close()

    mine = results.pop("ours (resumable)")
    fastest = max(results, key=lambda label: results[label]["mib_s"])
    anchor = results[fastest]
    ratio = mine["mib_s"] / anchor["mib_s"]
    for label, other in results.items():
        print(f"  ours / {label}: {mine['mib_s'] / other['mib_s']:.0%}")
    print(
        f"  resume after cut at byte {resume['cut']}: re-sent {resume['resent'] / MiB:.2f} MiB,"
        f" {resume['status_queries']} status query"
    )
    name = f"upload throughput, {chunk / MiB:g} MiB chunks"
    rows = [
        figure(
            name,
            mine["mib_s"],
            "MiB/s",
            anchor=f"{fastest} (the faster anchor)",
            anchor_value=anchor["mib_s"],
            ratio=ratio,
            target=">= 80 %",
            met=ratio >= 0.8,
        ),
        *(
            figure(name, mine["mib_s"], "MiB/s", anchor=label, anchor_value=o["mib_s"])
            for label, o in results.items()
            if label != fastest
        ),
        figure(
            "upload RSS growth",
            mine["rss"] / MiB,
            "MiB",
            target="< 64 MiB",
            met=mine["rss"] < 64 * MiB,
        ),
        figure(
            "bytes re-sent after a cut at 60 %",
            resume["resent"] / MiB,
            "MiB",
            target=f"<= one chunk ({chunk / MiB:g} MiB)",
            met=0 <= resume["resent"] <= chunk and resume["received"] == size,
        ),
    ]
    return 0 if record("upload", rows) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(event_loop.run(main()))
