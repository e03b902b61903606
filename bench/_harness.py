"""What the platform benches share: a fake platform in a child process, the plain-PUT
anchor, a video file, RSS sampling, the size argument, and medians of repeated runs.

The fake runs in its own process so that the CPU time and memory measured are the
client's own; the anchor is the same bytes in one streaming httpx PUT to a sink on
that fake (`/bench/sink`, answering `{"received": n}`): the physical limit here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import re
import resource
import socket
import statistics
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from agent.sources import FileByteSource

MiB = 1024 * 1024
T = TypeVar("T")
SINK = "/bench/sink"
START_SECONDS = 60  # a spawned child imports the fakes first: slow on a loaded machine


def parse_size(text: str) -> int:
    """`256MiB`, `1GiB`, `512K`, `4096`: binary units, whole numbers."""
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
    """Samples this process's RSS every 10 ms; `growth` is the peak minus the start."""

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


@dataclass(frozen=True, slots=True)
class Child:
    """A fake serving in another process: its base URL and process id."""

    base: str
    pid: int


@contextlib.asynccontextmanager
async def fake_in_child(target: Callable[..., None], **kwargs: Any) -> AsyncIterator[Child]:
    """Run `target(port, **kwargs)`, which serves a fake on 127.0.0.1:port, in a spawned
    process for the length of the block; yields once the port takes connections."""
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(
        target=target, args=(port,), kwargs=kwargs, daemon=True
    )
    child.start()
    try:
        await _accepting(port, child)
        assert child.pid is not None
        yield Child(f"http://127.0.0.1:{port}", child.pid)
    finally:
        child.terminate()
        child.join(5)


async def _accepting(port: int, child: Any) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if not child.is_alive():
            raise RuntimeError("fake server exited before it started")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError("fake server did not start")


def serve(app: Any, port: int) -> None:
    """Serve an ASGI `app` on 127.0.0.1:port until the process ends (in the child)."""
    import uvicorn

    # A cut connection makes uvicorn complain on stderr; that is what a fault is.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")


def video_file(directory: Path, size: int, *, random: bool = False) -> FileByteSource:
    """A `size`-byte video.mp4 in `directory`: sparse (no disk writes, reads return zero
    pages) unless `random` asks for real random bytes."""
    path = directory / "video.mp4"
    with open(path, "wb") as fh:
        if random:
            for _ in range(0, size, MiB):
                fh.write(os.urandom(MiB))
        fh.truncate(size)
    return FileByteSource(path, mime_type="video/mp4")


async def interleaved(
    size: int, runs: dict[str, Callable[[], Awaitable[Any]]], rounds: int
) -> dict[str, dict[str, Any]]:
    """One run of each per round, in turn, so drift on a shared machine hits all alike;
    each reports its median time and CPU per GiB (RSS growth: the worst seen)."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    cpu: dict[str, list[float]] = {label: [] for label in runs}
    rss: dict[str, int] = dict.fromkeys(runs, 0)
    for _ in range(rounds):
        for label, run in runs.items():
            with RssPeak() as peak:
                cpu_before = cpu_seconds()
                started = time.perf_counter()
                await run()
                elapsed = time.perf_counter() - started
                cpu[label].append(cpu_seconds() - cpu_before)
            times[label].append(elapsed)
            rss[label] = max(rss[label], peak.growth)
    out: dict[str, dict[str, Any]] = {}
    gib = size / (1024 * MiB)
    for label, values in times.items():
        seconds = statistics.median(values)
        out[label] = {"seconds": seconds, "mib_s": size / MiB / seconds, "rss": rss[label]}
        print(
            f"  {label:<28} {seconds:7.2f} s  {size / MiB / seconds:8.1f} MiB/s"
            f"  CPU {statistics.median(cpu[label]) / gib:5.2f} s/GiB"
            f"  (median of {len(values)}; runs {', '.join(f'{v:.2f}' for v in values)} s)"
            f"  RSS +{rss[label] / MiB:6.1f} MiB",
            flush=True,
        )
    return out


def cpu_seconds() -> float:
    """This process's CPU time so far (every thread: the google client runs in one)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def median_run(rounds: int, run: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """`run` `rounds` (at least 1) times in a row: what its last run returned, and the
    median seconds."""
    results: list[T] = []
    times: list[float] = []
    for _ in range(max(rounds, 1)):
        started = time.perf_counter()
        results.append(await run())
        times.append(time.perf_counter() - started)
    return results[-1], statistics.median(times)


def warm_page_cache(path: Path) -> None:
    """Read a file through once. The first read of a sparse file fills the page cache,
    which otherwise costs whichever run reads it first (bench/media_route once measured
    its first route at 0.57x the second for that alone)."""
    with open(path, "rb") as fh:
        while fh.read(8 * MiB):
            pass


async def plain_put(client: httpx.AsyncClient, base: str, source: FileByteSource) -> None:
    """The anchor: the source's bytes as one streaming PUT to the fake's sink."""
    response = await client.put(
        f"{base}{SINK}",
        content=source.open(0),
        headers={"Content-Length": str(source.size), "Content-Type": source.mime_type},
    )
    response.raise_for_status()
    if response.json()["received"] != source.size:
        raise RuntimeError("plain PUT lost bytes")
