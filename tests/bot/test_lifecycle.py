"""Process lifecycle: `socialops run` starts, serves, and exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from storage.crypto import generate_key_spec

CHAT_VARS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "DISCORD_TOKEN")
BAD_WORDS = ("Unclosed", "Task was destroyed", "Traceback", "never awaited")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(tmp_path: Path, pg_dsn: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CHAT_VARS}
    env.update(
        DATABASE_URL=pg_dsn,
        REDIS_URL=redis_url,
        SOCIALOPS_DATA_DIR=str(tmp_path / "data"),
        TOKEN_ENCRYPTION_KEYS=generate_key_spec("t"),
        PYTHONWARNINGS="always",
        PYTHONASYNCIODEBUG="0",
    )
    env.update(extra)
    return env


async def wait_healthy(base: str, proc: asyncio.subprocess.Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "process exited during startup"
            try:
                if (await client.get(f"{base}/healthz", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("service never became healthy")


async def test_sigterm_exits_zero_quickly_without_resource_warnings(
    tmp_path: Path, pg_dsn: str, redis_url: str
) -> None:
    port = free_port()
    env = base_env(tmp_path, pg_dsn, redis_url, PORT=str(port), LOG_FORMAT="json")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    await wait_healthy(base, proc)
    async with httpx.AsyncClient() as client:
        ready = await client.get(f"{base}/readyz")
    assert ready.json() == {"postgres": "ok", "redis": "ok"}
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=25)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, err.decode()
    assert elapsed < 25
    text = err.decode()
    for word in BAD_WORDS:
        assert word not in text, text
    assert '"part": "web"' in text and '"part": "worker"' in text


async def test_shell_answers_over_a_pipe_and_exits_on_eof(
    tmp_path: Path, pg_dsn: str, redis_url: str
) -> None:
    env = base_env(tmp_path, pg_dsn, redis_url, LOG_FORMAT="json")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "shell",
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(b"help\n"), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "socialops shell" in out.decode()
    # The core answered `help` through the shell: the command list is printed.
    assert "link <platform>" in out.decode() and "quota" in out.decode()
    for word in BAD_WORDS:
        assert word not in err.decode(), err.decode()


def test_embedded_defaults_start_migrate_write_and_reuse() -> None:
    """No DATABASE_URL/REDIS_URL: embedded servers start, and a second start sees the data."""
    # Not pytest's tmp_path: the embedded server runs as another OS user when we are root
    # and needs a traversable path that pytest's retention sweep of old dirs won't touch.
    tmp_path = Path(tempfile.mkdtemp(prefix="socialops-embedded-"))
    try:
        _embedded_round_trip(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _embedded_round_trip(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", *CHAT_VARS)
    }
    env["SOCIALOPS_DATA_DIR"] = str(tmp_path / "data")
    script = """
import asyncio, sys
from bot.services import Services
from bot.settings import Settings

async def main(mode):
    services = Services(settings=Settings(_env_file=None))
    await services.initialize()
    try:
        if mode == "write":
            await services.db.pool.execute(
                "INSERT INTO workspaces (frontend, external_id, name) VALUES ('local', 'w', 'kept')")
            await services.redis.client.set(services.redis.key("probe"), "still here")
        else:
            name = await services.db.pool.fetchval(
                "SELECT name FROM workspaces WHERE frontend = 'local' AND external_id = 'w'")
            print(name)
            print((await services.redis.client.get(services.redis.key("probe"))).decode())
    finally:
        await services.shutdown()

asyncio.run(main(sys.argv[1]))
"""
    first = subprocess.run(
        [sys.executable, "-c", script, "write"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    second = subprocess.run(
        [sys.executable, "-c", script, "read"], env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["kept", "still", "here"]
    assert "Unclosed" not in first.stderr + second.stderr
