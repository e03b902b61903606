"""Pool connections come back without asyncpg's reset query, except after a LISTEN."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from storage.db import Database


async def test_only_a_listening_connection_is_reset(server_dsn: str, tmp_path: Path) -> None:
    db = Database(dsn=server_dsn, data_dir=tmp_path, min_size=1, max_size=1)
    await db.open()
    try:
        # Released still listening (as the job engine's listener may be at shutdown):
        # asyncpg warns, and the release must undo the LISTEN.
        with pytest.warns(asyncpg.InterfaceWarning, match="notification listener"):
            async with db.pool.acquire() as conn:
                assert await conn.fetchval("SELECT 1") == 1
                raw = conn._con  # the connection behind asyncpg's pool proxy
                assert raw.get_reset_query() == ""  # released with no round trip
                await conn.add_listener("socialops_test_channel", lambda *args: None)
                assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 1
        # Released: asyncpg dropped the callback, and UNLISTEN * dropped the server's side.
        async with db.pool.acquire() as conn:
            assert conn._con is raw  # the same server session (the pool has one)
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
            assert raw.get_reset_query() == ""
    finally:
        await db.close()
