"""Idle cost: how long `socialops shell` takes to its prompt and to quit, and what an
idle `socialops serve` holds in memory.

Each figure is the median of several runs of a fresh process, next to an anchor
measured in the same run:

- shell to its prompt (on a terminal: a pty), with the servers already running
  (DATABASE_URL/REDIS_URL) and with the embedded ones it starts itself; anchor:
  `python -c pass` (the interpreter's own start).
- `quit` to the process's exit, both ways (the embedded Postgres stops in fast mode).
- `serve` with Slack configured and no model, once it answers /healthz: resident
  memory (VmRSS); anchor: a bare FastAPI app under uvicorn with one route.
- the first Slack request such an idle `serve` acknowledges: a signed slash command,
  and (each in a fresh process) a signed `app_mention` event_callback, which goes
  through bolt and so waits for the Slack libraries to load (bot.slack.bolt_app);
  anchor: the next event to the same process. Then the process's resident memory.
  Slack's Web API is a fake on loopback (tests/fakes/slack.py).

The embedded servers' data directory is made (initdb) before the timed runs.

    python bench/idle.py
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import figure, record
from storage.db import Database
from storage.redis import RedisHandle
from tests.fakes.slack import form_body, sign

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_IDLE_RUNS", "5"))
BIN = Path(sys.executable).parent
PROMPT = b"socialops> "
# Nothing from the caller's environment may configure a model, a chat app or servers.
SCRUB = ("DATABASE_URL", "REDIS_URL", "DATABASE_DIRECT_URL", "OPENAI_API_KEY")
# As deployed, the processes import cached bytecode (the image installs compiled
# modules); a checkout run with PYTHONDONTWRITEBYTECODE would time the compiler instead.
NOT_DEPLOYED = ("PYTHONDONTWRITEBYTECODE",)

BARE_APP = """
from fastapi import FastAPI
import uvicorn

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
"""

SLACK_TEAM = "TBENCH"
SLACK_BOT_USER = "UBENCHBOT"
SLACK_TOKEN = "xoxb-bench-not-a-real-token"
SLACK_SECRET = "bench-signing-secret"
FAKE_SLACK = f"""
import uvicorn
from tests.fakes.slack import FakeSlack

fake = FakeSlack(base_url="http://127.0.0.1:{{port}}")
fake.add_team({SLACK_TEAM!r}, token={SLACK_TOKEN!r}, bot_user_id={SLACK_BOT_USER!r})
uvicorn.run(fake.app, host="127.0.0.1", port={{port}}, log_level="warning")
"""


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SCRUB + NOT_DEPLOYED and not k.startswith(("SLACK_", "DISCORD_", "LLM_"))
    }
    env.update(SOCIALOPS_DATA_DIR=str(data_dir), LOG_LEVEL="WARNING", **extra)
    return env


def python_start() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def read_until(fd: int, marker: bytes, deadline: float) -> bytes:
    seen = b""
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {marker!r} after: {seen[-300:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other side closed
                raise TimeoutError(f"closed before {marker!r}: {seen[-300:]!r}") from None
            seen += chunk
    return seen


def shell_once(env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the prompt, seconds from `quit` to exit) of one shell on a pty."""
    master, slave = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "socialops"), "shell"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    try:
        read_until(master, PROMPT, time.monotonic() + 60)
        ready = time.perf_counter() - t0
        t1 = time.perf_counter()
        os.write(master, b"quit\n")
        proc.wait(timeout=60)
        gone = time.perf_counter() - t1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    if proc.returncode != 0:
        raise RuntimeError(f"shell exited {proc.returncode}")
    return ready, gone


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_healthy(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def serving(argv: list[str], env: dict[str, str], port: int) -> Iterator[int]:
    """The process's pid once it answers /healthz on `port` and has settled (then it is
    stopped)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(proc, port)
        time.sleep(0.5)  # settled: nothing left loading
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return kib / 1024


def rss_when_healthy(argv: list[str], env: dict[str, str], port: int) -> float:
    """MiB resident once the process answers /healthz on `port` (then it is stopped)."""
    with serving(argv, env, port) as pid:
        return rss_mib(pid)


def slash_command() -> tuple[bytes, str]:
    body = form_body(
        {
            "team_id": SLACK_TEAM,
            "channel_id": "C1",
            "user_id": "UBENCH",
            "command": "/social",
            "text": "help",
            "response_url": "http://127.0.0.1:9/response",
            "trigger_id": f"t.{uuid.uuid4().hex}",
        }
    )
    return body, "application/x-www-form-urlencoded"


def mention() -> tuple[bytes, str]:
    event = {
        "type": "app_mention",
        "user": "UBENCH",
        "channel": "C1",
        "ts": f"{time.time():.6f}",
        "text": f"<@{SLACK_BOT_USER}> help",
    }
    body = {
        "type": "event_callback",
        "team_id": SLACK_TEAM,
        "api_app_id": "A1",
        "event": event,
        "event_id": f"Ev{uuid.uuid4().hex}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": SLACK_TEAM, "user_id": SLACK_BOT_USER, "is_bot": True}],
    }
    return json.dumps(body).encode(), "application/json"


def ack_seconds(port: int, request: tuple[bytes, str]) -> float:
    """Seconds for `serve` on `port` to answer one signed Slack request (it must be a 200)."""
    body, content_type = request
    post = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events",
        data=body,
        headers={"Content-Type": content_type, **sign(SLACK_SECRET, body)},
        method="POST",
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(post, timeout=30) as response:
        response.read()
        elapsed = time.perf_counter() - t0
        if response.status != 200:
            raise RuntimeError(f"slack request answered {response.status}")
    return elapsed


def first_acks(
    argv: list[str], env: dict[str, str], port: int
) -> tuple[float, float, float, float]:
    """(first slash command's ack, first event's ack, the next event's ack, MiB resident
    after them), each first request to a fresh idle `serve`."""
    with serving(argv, env, port):
        command = ack_seconds(port, slash_command())
    with serving(argv, env, port) as pid:
        event = ack_seconds(port, mention())
        time.sleep(0.5)  # its answer posted: settled again
        after = rss_mib(pid)
        warm = ack_seconds(port, mention())
    return command, event, warm, after


async def servers(data_dir: Path) -> tuple[Database, RedisHandle]:
    data_dir.mkdir()
    db = Database(dsn=None, data_dir=data_dir)
    redis = RedisHandle(url=None, data_dir=data_dir, key_prefix="socialops-bench-idle:")
    await db.open()
    await redis.open()
    return db, redis


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="socialops-bench-idle-"))
    loop = asyncio.new_event_loop()
    db, redis = loop.run_until_complete(servers(tmp / "servers"))
    try:
        external = environment(tmp / "ext", DATABASE_URL=db.dsn, REDIS_URL=redis.url)
        embedded = environment(tmp / "emb")
        shell_once(embedded)  # initdb and the first migration, outside the timings
        shell_once(external)
        starts, ext, emb = [], [], []
        for _ in range(RUNS):  # interleaved, so load on a shared machine hits all alike
            starts.append(python_start())
            ext.append(shell_once(external))
            emb.append(shell_once(embedded))
        anchor = statistics.median(starts)
        ext_ready = statistics.median(r for r, _ in ext)
        ext_quit = statistics.median(q for _, q in ext)
        emb_ready = statistics.median(r for r, _ in emb)
        emb_quit = statistics.median(q for _, q in emb)

        port = free_port()
        fake_port = free_port()
        slack = {
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_SIGNING_SECRET": SLACK_SECRET,
            "SLACK_API_BASE": f"http://127.0.0.1:{fake_port}/api/",
            "PORT": str(port),
        }
        serve_env = environment(tmp / "ext", DATABASE_URL=db.dsn, REDIS_URL=redis.url, **slack)
        serve = [str(BIN / "socialops"), "serve"]
        bare_port = free_port()
        fake = [sys.executable, "-c", FAKE_SLACK.replace("{port}", str(fake_port))]
        fake_slack = subprocess.Popen(fake, cwd=ROOT, env=environment(tmp / "fake"))
        ours_rss, bare_rss, acks = [], [], []
        try:
            wait_listening(fake_port)
            for _ in range(max(RUNS // 2, 2)):
                ours_rss.append(rss_when_healthy(serve, serve_env, port))
                bare = [sys.executable, "-c", BARE_APP.replace("{port}", str(bare_port))]
                bare_rss.append(rss_when_healthy(bare, environment(tmp / "bare"), bare_port))
                acks.append(first_acks(serve, serve_env, port))
        finally:
            fake_slack.terminate()
            fake_slack.wait()
        rss, bare_mib = statistics.median(ours_rss), statistics.median(bare_rss)
        first_command = statistics.median(a[0] for a in acks)
        first_event = statistics.median(a[1] for a in acks)
        warm_event = statistics.median(a[2] for a in acks)
        rss_after = statistics.median(a[3] for a in acks)

        print(f"idle cost: median of {RUNS} fresh processes each")
        print(f"  python -c pass           : {anchor * 1000:7.0f} ms")
        print(
            f"  shell to prompt, servers : {ext_ready * 1000:7.0f} ms   quit {ext_quit * 1000:5.0f} ms"
        )
        print(
            f"  shell to prompt, embedded: {emb_ready * 1000:7.0f} ms   quit {emb_quit * 1000:5.0f} ms"
        )
        print(
            f"  serve RSS (Slack, no model): {rss:6.1f} MiB   bare FastAPI+uvicorn {bare_mib:6.1f} MiB"
        )
        print(
            f"  first Slack ack: command {first_command * 1000:5.0f} ms   "
            f"event {first_event * 1000:5.0f} ms (next event {warm_event * 1000:4.0f} ms)   "
            f"then RSS {rss_after:5.1f} MiB"
        )
        rows = [
            figure(
                "shell to prompt, external servers",
                ext_ready,
                "s",
                anchor="python -c pass",
                anchor_value=anchor,
                target="< 1.0 s",
                met=ext_ready < 1.0,
            ),
            figure(
                "shell to prompt, embedded servers",
                emb_ready,
                "s",
                anchor="python -c pass",
                anchor_value=anchor,
                target="< 1.5 s",
                met=emb_ready < 1.5,
            ),
            figure(
                "quit to exit, external servers",
                ext_quit,
                "s",
                target="< 0.5 s",
                met=ext_quit < 0.5,
            ),
            figure(
                "quit to exit, embedded servers",
                emb_quit,
                "s",
                target="< 0.5 s",
                met=emb_quit < 0.5,
            ),
            figure(
                "idle serve RSS (Slack, no model)",
                rss,
                "MiB",
                anchor="bare FastAPI+uvicorn",
                anchor_value=bare_mib,
                target="< 80 MiB",
                met=rss < 80,
            ),
            figure(
                "first Slack ack after idle start: slash command",
                first_command,
                "s",
                target="< 1.0 s",
                met=first_command < 1.0,
            ),
            figure(
                "first Slack ack after idle start: event",
                first_event,
                "s",
                anchor="next event, same process",
                anchor_value=warm_event,
                target="< 1.0 s",
                met=first_event < 1.0,
            ),
            figure("serve RSS after its first Slack event", rss_after, "MiB"),
        ]
        return 0 if record("idle", rows) else 1
    finally:
        loop.run_until_complete(redis.close())
        loop.run_until_complete(db.close())
        loop.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
