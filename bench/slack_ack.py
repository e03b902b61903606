"""Time to acknowledge a signed `/social` slash command: socialops vs three anchors.

Run from the repo root: `python bench/slack_ack.py`. Servers start as subprocesses
on loopback (uvicorn, same settings): a fake Slack Web API; the socialops web app
with the Slack adapter, whose follow-up work runs on the same event loop as its
acks (a scripted agent reply: 200 ms waiting on a "model", 5 ms of real CPU, then an
answer through the API); and the anchors, each acking only:

- the physical floor: a plain FastAPI route that verifies the signature and answers 200;
- bolt on equal footing: `AsyncApp(process_before_response=True)`, an ack-only listener
  (as our adapter runs bolt);
- bolt's default (`process_before_response=False`): it polls for the ack every 10 ms,
  so it cannot answer under 10 ms; kept to show what that costs.

Every server runs on uvloop: the anchors under `uvicorn.run` (uvicorn's own choice when
uvloop is installed), ours under `bot.event_loop.run`, as every socialops process does.

The load generator (this process) measures request -> response times, sequentially
(p50/p99) and in bursts of 50, 200 and 800 concurrent requests (p50/p99), the servers
interleaved. It is a minimal HTTP/1.1 client of its own (`_Connection`): each request
is signed and framed before the clock starts and written in one call, one connection
each, so that at 800 the figure is the server's, not the generator's (with aiohttp,
its own CPU per request made the last requests of a burst leave late). Targets:
sequential p50 within 1.2x the floor; at 200 and 800 concurrent, p99 at most half the
equal-footing bolt anchor's and under Slack's 3 s.

REDIS_URL is used if set, else an embedded Redis under a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
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

import httpx  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402

from bench.results import figure, record  # noqa: E402
from bot import event_loop  # noqa: E402
from tests.fakes.slack import form_body, sign  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
TOKEN = "xoxb-TBENCH-1"
SEQUENTIAL = 400
WARMUP = 60
CONCURRENCY = (50, 200, 800)
BURSTS = 3
CORE_WAIT_SECONDS = 0.2
CORE_CPU_SECONDS = 0.005
SETTLE_SECONDS = 1.5  # after a burst: its follow-up work finishes before the next one


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
        timeout_keep_alive=120,  # idle while the other servers are measured
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
    from bot.services import Services, freeze_startup_heap
    from bot.settings import Settings
    from bot.slack import build_slack_adapter
    from bot.web import create_app
    from storage.crypto import generate_key_spec

    class BenchCore:
        """Stands in for the conversation core: a slow 'model', the agent's own CPU work
        (on this event loop, as in production), then an API reply."""

        async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
            await asyncio.sleep(CORE_WAIT_SECONDS)
            start = time.thread_time()
            while time.thread_time() - start < CORE_CPU_SECONDS:
                hashlib.sha256(message.text.encode() * 64).digest()
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
    app = create_app(services, routers=[adapter.router()], endpoints=adapter.endpoints())

    async def main() -> None:
        import uvicorn

        await services.redis.open()
        freeze_startup_heap()  # as `run_parts` does once a process's parts have started
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=2048,
            timeout_keep_alive=120,
        )
        try:
            await uvicorn.Server(config).serve()
        finally:
            await adapter.aclose(5)
            await services.redis.close()

    event_loop.run(main())


def serve_floor(port: int) -> None:
    """The least any Slack endpoint must do: check the signature, answer 200."""
    key = SECRET.encode()
    app = FastAPI()

    @app.post("/slack/events")
    async def events(request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        digest = hmac.new(key, f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(f"v0={digest}", request.headers.get("x-slack-signature", "")):
            return Response(status_code=401)
        return Response(status_code=200)

    _serve(app, port)


def serve_bare(port: int, api_base: str, process_before_response: bool) -> None:
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=api_base),
        signing_secret=SECRET,
        process_before_response=process_before_response,
    )

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


def _command(n: int, port: int) -> bytes:
    """One signed `/social` request, as the bytes of an HTTP/1.1 POST to `port`."""
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
    headers = {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
        **sign(SECRET, body),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST /slack/events HTTP/1.1\r\n{head}\r\n".encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends a prepared request and times its answer.

    Hand-written: the load generator shares the machine's two cores with the server it
    measures, and an HTTP client library's own CPU per request (aiohttp: about 150 us to
    send one and read its answer) made it the bottleneck of an 800-request burst: the
    last requests left tens of milliseconds late, and the burst's p99 measured the
    generator. Here a request is bytes prepared (and signed) before the clock starts,
    written in one call; the answer is timed as soon as its last byte is read. Answers
    must carry Content-Length (uvicorn's do); anything else fails loudly.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._body = 0  # where the awaited answer's body starts in the buffer, once known
        self._end = 0  # and where it ends
        self._status = 0
        self._started = 0.0
        self._answer: asyncio.Future[tuple[int, bytes, float]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's: no asyncio base

    def connection_lost(self, exc: Exception | None) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError(f"connection lost: {exc}"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes, float]]:
        """Send `request`; the future gives the answer's status, body and seconds taken."""
        assert self._transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        self._buffer.clear()
        self._body = self._end = 0
        self._started = time.perf_counter()
        self._transport.write(request)
        return self._answer

    def data_received(self, data: bytes) -> None:
        if self._answer is None:
            raise RuntimeError(f"bytes nobody asked for: {data[:80]!r}")
        self._buffer += data
        if not self._end:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            lines = bytes(self._buffer[:head_end]).decode("latin-1").split("\r\n")
            self._status = int(lines[0].split(" ", 2)[1])
            fields = (line.split(":", 1) for line in lines[1:])
            length = next((v for k, v in fields if k.strip().lower() == "content-length"), None)
            if length is None:
                raise RuntimeError(f"an answer without Content-Length: {lines[:6]}")
            self._body = head_end + 4
            self._end = self._body + int(length)
        if len(self._buffer) >= self._end:
            elapsed = time.perf_counter() - self._started
            answer, self._answer = self._answer, None
            assert answer is not None
            answer.set_result((self._status, bytes(self._buffer[self._body : self._end]), elapsed))


async def _connect(port: int, count: int) -> list[_Connection]:
    loop = asyncio.get_running_loop()
    made = await asyncio.gather(
        *(loop.create_connection(_Connection, "127.0.0.1", port) for _ in range(count))
    )
    return [protocol for _, protocol in made]


BUSY_ACKS = 0  # acks of ours that said "busy" (admission control) instead of taking work


async def _send_all(
    connections: list[_Connection], requests: list[bytes], name: str
) -> list[float]:
    """Each request on its own connection, all written in one go; seconds to each answer."""
    global BUSY_ACKS
    answers = await asyncio.gather(*(c.send(r) for c, r in zip(connections, requests, strict=True)))
    for status, body, _ in answers:
        if status != 200:
            raise RuntimeError(f"{name} answered {status}: {body[:200]!r}")
        if b"busy right now" in body:
            BUSY_ACKS += 1
    return [elapsed for _, _, elapsed in answers]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def _sequential(ports: dict[str, int]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in ports}
    connections = {k: await _connect(port, 1) for k, port in ports.items()}
    try:
        for name, port in ports.items():
            for n in range(WARMUP):
                await _send_all(connections[name], [_command(n, port)], name)
        # Interleave blocks so drift on a shared machine hits every server alike.
        for block in range(0, SEQUENTIAL, 50):
            for name, port in ports.items():
                for n in range(block, block + 50):
                    times[name] += await _send_all(connections[name], [_command(n, port)], name)
    finally:
        for connection in (c for opened in connections.values() for c in opened):
            connection.close()
    return times


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, list[float]] = {}  # server -> its CPU seconds per request, per burst


async def _bursts(ports: dict[str, int], size: int, pids: dict[str, int]) -> dict[str, list[float]]:
    """BURSTS bursts of `size` concurrent requests per server, servers interleaved."""
    out: dict[str, list[float]] = {k: [] for k in ports}
    # `size` connections per target, opened (and used once, uncounted) before timing.
    connections = {k: await _connect(port, size) for k, port in ports.items()}
    try:
        for name, port in ports.items():
            await _send_all(connections[name], [_command(n, port) for n in range(size)], name)
        await asyncio.sleep(SETTLE_SECONDS)
        for _ in range(BURSTS):
            for name, port in ports.items():
                requests = [_command(n, port) for n in range(size)]  # signed before timing
                before = _cpu_seconds(pids[name])
                got = await _send_all(connections[name], requests, name)
                # Ours includes its follow-up work's first steps, started within the burst.
                CPU.setdefault(name, []).append((_cpu_seconds(pids[name]) - before) / size)
                out[name] += got
                # Let the burst's follow-up work finish before measuring the next server.
                await asyncio.sleep(SETTLE_SECONDS)
    finally:
        for connection in (c for opened in connections.values() for c in opened):
            connection.close()
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


OURS, FLOOR, FAIR, DEFAULT = (
    "socialops",
    "FastAPI floor",
    "bolt, process_before_response",
    "bolt default (10 ms polling)",
)


def _spawn_server(role: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
    me = str(Path(__file__).resolve())
    return subprocess.Popen([sys.executable, me, "--serve", role, "--port", str(port), *extra])


async def bench() -> int:
    roles = ("fake", "ours", "floor", "fair", "default")
    ports = {role: _free_port() for role in roles}
    api_base = f"http://127.0.0.1:{ports['fake']}/api/"
    data_dir = tempfile.mkdtemp(prefix="socialops-bench-")
    procs = {
        "fake": _spawn_server("fake", ports["fake"]),
        "ours": _spawn_server(
            "ours", ports["ours"], "--api-base", api_base, "--data-dir", data_dir
        ),
        "floor": _spawn_server("floor", ports["floor"]),
        "fair": _spawn_server("fair", ports["fair"], "--api-base", api_base),
        "default": _spawn_server("default", ports["default"], "--api-base", api_base),
    }
    try:
        for name, proc in procs.items():
            await _wait_ready(f"http://127.0.0.1:{ports[name]}/", proc)

        targets = {
            OURS: ports["ours"],
            FLOOR: ports["floor"],
            FAIR: ports["fair"],
            DEFAULT: ports["default"],
        }
        seq = await _sequential(targets)
        pids = {
            OURS: procs["ours"].pid,
            FLOOR: procs["floor"].pid,
            FAIR: procs["fair"].pid,
            DEFAULT: procs["default"].pid,
        }
        bursts = {size: await _bursts(targets, size, pids) for size in CONCURRENCY}
        await asyncio.sleep(SETTLE_SECONDS)
        async with httpx.AsyncClient() as http:
            stats = (await http.get(f"http://127.0.0.1:{ports['fake']}/stats")).json()

        print(f"slack_ack: signed /social over loopback, {os.cpu_count()} CPUs")
        print(
            f"  ours runs its follow-up work on the same loop ({CORE_WAIT_SECONDS * 1000:.0f} ms"
            f" wait + {CORE_CPU_SECONDS * 1000:.0f} ms CPU per command)"
        )
        print(f"sequential ({SEQUENTIAL} requests after {WARMUP} warm-up), time to ack:")
        for name, values in seq.items():
            print(
                f"  {name:32s} p50 {_pct(values, 0.5):7.2f} ms   p99 {_pct(values, 0.99):7.2f} ms"
                f"   mean {statistics.fmean(values) * 1000:7.2f} ms"
            )
        for size, by_server in bursts.items():
            print(f"concurrent ({BURSTS} bursts of {size}):")
            for name, values in by_server.items():
                print(
                    f"  {name:32s} p50 {_pct(values, 0.5):7.2f} ms"
                    f"   p99 {_pct(values, 0.99):7.2f} ms   max {max(values) * 1000:7.2f} ms"
                )
        print("server CPU per request in the bursts (median; what one event loop must spend):")
        for name, values in CPU.items():
            print(f"  {name:32s} {statistics.median(values) * 1e6:7.0f} us")
        sent = WARMUP + SEQUENTIAL + sum((BURSTS + 1) * size for size in CONCURRENCY)
        print(
            f"socialops: {sent - BUSY_ACKS} commands taken, {BUSY_ACKS} answered busy"
            f" (admission control); follow-up replies posted: {stats['postMessage']}"
        )
        p50 = _pct(seq[OURS], 0.5)
        rows = [
            figure(
                "sequential ack p50",
                p50,
                "ms",
                anchor=FLOOR,
                anchor_value=_pct(seq[FLOOR], 0.5),
                target="<= x1.20",
                met=p50 <= 1.2 * _pct(seq[FLOOR], 0.5),
            ),
            figure(
                "sequential ack p50 vs bolt",
                p50,
                "ms",
                anchor=FAIR,
                anchor_value=_pct(seq[FAIR], 0.5),
            ),
            figure(
                "sequential ack p50 vs bolt's default",
                p50,
                "ms",
                anchor=DEFAULT,
                anchor_value=_pct(seq[DEFAULT], 0.5),
            ),
        ]
        for size, by_server in bursts.items():
            ours, fair = _pct(by_server[OURS], 0.99), _pct(by_server[FAIR], 0.99)
            targeted = size >= 200
            rows.append(
                figure(
                    f"ack p99 at {size} concurrent",
                    ours,
                    "ms",
                    anchor=FAIR,
                    anchor_value=fair,
                    target="<= x0.50 and < 3000 ms" if targeted else None,
                    met=(ours <= 0.5 * fair and ours < 3000) if targeted else None,
                )
            )
            # The floor bounds what any endpoint could reach on this machine.
            floor = _pct(by_server[FLOOR], 0.99)
            rows.append(
                figure(
                    f"ack p99 at {size} concurrent vs floor",
                    ours,
                    "ms",
                    anchor=FLOOR,
                    anchor_value=floor,
                )
            )
        cpu = {name: statistics.median(values) * 1e6 for name, values in CPU.items()}
        rows.append(
            figure(
                "server CPU per ack in bursts",
                cpu[OURS],
                "us",
                anchor=FAIR,
                anchor_value=cpu[FAIR],
            )
        )
        rows.append(
            figure(
                "server CPU per ack in bursts vs floor",
                cpu[OURS],
                "us",
                anchor=FLOOR,
                anchor_value=cpu[FLOOR],
            )
        )
        return 0 if record("slack_ack", rows) else 1
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=["fake", "ours", "floor", "fair", "default"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--api-base")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    if args.serve == "fake":
        serve_fake(args.port)
    elif args.serve == "ours":
        serve_ours(args.port, args.api_base, args.data_dir)
    elif args.serve == "floor":
        serve_floor(args.port)
    elif args.serve in ("fair", "default"):
        serve_bare(args.port, args.api_base, process_before_response=args.serve == "fair")
    else:
        return event_loop.run(bench())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
