"""Time to acknowledge a signed `/social` slash command: socialops vs a bare bolt app.

Run from the repo root: `python bench/slack_ack.py`. Three servers start as
subprocesses on loopback (uvicorn, same settings): a fake Slack Web API, the
socialops web app with the Slack adapter (its core sleeps 200 ms, like a model
call, then answers through the API), and the anchor: a bare slack-bolt
`AsyncApp` behind FastAPI whose `/social` listener only acks. The load generator
(this process) measures request -> response times:

- sequential signed requests: p50 / p99 time to ack;
- bursts of 200 concurrent signed requests: p50 / p99 and requests per second.

REDIS_URL is used if set, else an embedded Redis under a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402

from tests.fakes.slack import form_body, sign  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
TOKEN = "xoxb-TBENCH-1"
SEQUENTIAL = 400
WARMUP = 60
BURST = 200
BURSTS = 5
CORE_WORK_SECONDS = 0.2


# --- servers (subprocess side) ----------------------------------------------------------


def _serve(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=2048,
    )


def serve_fake(port: int) -> None:
    from tests.fakes.slack import FakeSlack

    fake = FakeSlack()
    fake.add_team("TBENCH", token=TOKEN)

    @fake.app.get("/stats")
    async def stats() -> dict[str, int]:
        return {"postMessage": len(fake.calls_of("chat.postMessage"))}

    _serve(fake.app, port)


def serve_ours(port: int, api_base: str, data_dir: str) -> None:
    from bot.core.messages import IncomingMessage, Reply, ReplySink
    from bot.services import Services
    from bot.settings import Settings
    from bot.slack import build_slack_adapter
    from bot.web import create_app
    from storage.crypto import generate_key_spec

    class BenchCore:
        """Stands in for the conversation core: a slow 'model', then an API reply."""

        async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
            await asyncio.sleep(CORE_WORK_SECONDS)
            await sink.send(Reply(f"done: {message.text}"))

        async def resolve_approval(self, **_: Any) -> None:
            raise AssertionError("not used by this benchmark")

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_base=api_base,
        redis_url=os.environ.get("REDIS_URL"),
        socialops_data_dir=Path(data_dir),
        token_encryption_keys=generate_key_spec("bench"),
        redis_key_prefix=f"socialops-bench:{os.getpid()}:",
    )
    services = Services(settings=settings)
    adapter = build_slack_adapter(services, handler=BenchCore())
    app = create_app(services, routers=[adapter.router()])

    async def main() -> None:
        import uvicorn

        await services.redis.open()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=2048,
        )
        try:
            await uvicorn.Server(config).serve()
        finally:
            await adapter.aclose(5)
            await services.redis.close()

    asyncio.run(main())


def serve_bare(port: int, api_base: str) -> None:
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=api_base), signing_secret=SECRET)

    @bolt.command("/social")
    async def social(ack: Any) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(bolt)
    app = FastAPI()

    @app.post("/slack/events")
    async def events(request: Request) -> Any:
        return await handler.handle(request)

    _serve(app, port)


# --- load generator ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(n: int) -> tuple[bytes, dict[str, str]]:
    body = form_body(
        {
            "token": "x",
            "team_id": "TBENCH",
            "team_domain": "bench",
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": "U1",
            "user_name": "bench",
            "command": "/social",
            "text": f"stats {n}",
            "api_app_id": "A1",
            "response_url": "http://127.0.0.1:9/r",
            # Unique per request, as Slack makes it: a repeated one is dropped as a replay.
            "trigger_id": f"t.{n}.{uuid.uuid4().hex}",
        }
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)}
    return body, headers


async def _one(http: aiohttp.ClientSession, url: str, n: int) -> float:
    body, headers = _command(n)
    start = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as response:
        text = await response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"{url} answered {response.status}: {text[:200]!r}")
    return elapsed


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def _sequential(urls: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in urls}
    sessions = {k: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for k in urls}
    try:
        for name, url in urls.items():
            for n in range(WARMUP):
                await _one(sessions[name], url, n)
        # Interleave blocks so drift on a shared machine hits both alike.
        for block in range(0, SEQUENTIAL, 50):
            for name, url in urls.items():
                for n in range(block, block + 50):
                    times[name].append(await _one(sessions[name], url, n))
    finally:
        for session in sessions.values():
            await session.close()
    return times


async def _bursts(urls: dict[str, str]) -> dict[str, tuple[list[float], float]]:
    out: dict[str, tuple[list[float], float]] = {k: ([], 0.0) for k in urls}
    # One client per target, its 200 connections opened by an uncounted burst first.
    sessions = {k: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) for k in urls}
    try:
        for name, url in urls.items():
            await asyncio.gather(*(_one(sessions[name], url, n) for n in range(BURST)))
        await asyncio.sleep(CORE_WORK_SECONDS + 1.0)
        for _ in range(BURSTS):
            for name, url in urls.items():
                start = time.perf_counter()
                got = await asyncio.gather(*(_one(sessions[name], url, n) for n in range(BURST)))
                wall = time.perf_counter() - start
                lat, total = out[name]
                out[name] = ([*lat, *got], total + wall)
                # Let the burst's follow-up work finish before measuring the other app.
                await asyncio.sleep(CORE_WORK_SECONDS + 1.0)
    finally:
        for session in sessions.values():
            await session.close()
    return out


async def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"server for {url} exited with {proc.returncode}")
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"server for {url} did not start")


async def bench() -> None:
    ports = {"fake": _free_port(), "ours": _free_port(), "bare": _free_port()}
    api_base = f"http://127.0.0.1:{ports['fake']}/api/"
    data_dir = tempfile.mkdtemp(prefix="socialops-bench-")
    me = str(Path(__file__).resolve())
    procs = {
        "fake": subprocess.Popen(
            [sys.executable, me, "--serve", "fake", "--port", str(ports["fake"])]
        ),
        "ours": subprocess.Popen(
            [
                sys.executable,
                me,
                "--serve",
                "ours",
                "--port",
                str(ports["ours"]),
                "--api-base",
                api_base,
                "--data-dir",
                data_dir,
            ]
        ),
        "bare": subprocess.Popen(
            [
                sys.executable,
                me,
                "--serve",
                "bare",
                "--port",
                str(ports["bare"]),
                "--api-base",
                api_base,
            ]
        ),
    }
    try:
        for name, proc in procs.items():
            await _wait_ready(f"http://127.0.0.1:{ports[name]}/", proc)
        urls = {
            "socialops": f"http://127.0.0.1:{ports['ours']}/slack/events",
            "bare bolt (anchor)": f"http://127.0.0.1:{ports['bare']}/slack/events",
        }
        seq = await _sequential(urls)
        bursts = await _bursts(urls)
        await asyncio.sleep(CORE_WORK_SECONDS + 1.0)
        async with httpx.AsyncClient() as http:
            stats = (await http.get(f"http://127.0.0.1:{ports['fake']}/stats")).json()

        print(f"slack_ack: signed /social over loopback, {os.cpu_count()} CPUs")
        print(f"sequential ({SEQUENTIAL} requests after {WARMUP} warm-up), time to ack:")
        for name, values in seq.items():
            print(
                f"  {name:20s} p50 {_pct(values, 0.5):7.2f} ms   p99 {_pct(values, 0.99):7.2f} ms"
                f"   mean {statistics.fmean(values) * 1000:7.2f} ms"
            )
        print(f"concurrent ({BURSTS} bursts of {BURST}):")
        for name, (values, wall) in bursts.items():
            print(
                f"  {name:20s} p50 {_pct(values, 0.5):7.2f} ms   p99 {_pct(values, 0.99):7.2f} ms"
                f"   max {max(values) * 1000:7.2f} ms   {len(values) / wall:7.0f} req/s"
            )
        ours, bare = seq["socialops"], seq["bare bolt (anchor)"]
        ratio = _pct(ours, 0.5) / _pct(bare, 0.5)
        print(f"sequential p50 ratio socialops/bare: {ratio:.2f} (target <= 0.50)")
        b_ours, b_bare = bursts["socialops"][0], bursts["bare bolt (anchor)"][0]
        print(
            f"concurrent p99 socialops {_pct(b_ours, 0.99):.1f} ms vs bare {_pct(b_bare, 0.99):.1f} ms"
            f" (target: no worse, and < 3000 ms)"
        )
        expected = WARMUP + SEQUENTIAL + (BURSTS + 1) * BURST
        print(f"follow-up replies posted by socialops' core: {stats['postMessage']} of {expected}")
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=["fake", "ours", "bare"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--api-base")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    if args.serve == "fake":
        serve_fake(args.port)
    elif args.serve == "ours":
        serve_ours(args.port, args.api_base, args.data_dir)
    elif args.serve == "bare":
        serve_bare(args.port, args.api_base)
    else:
        asyncio.run(bench())


if __name__ == "__main__":
    main()
