"""Per chat user settings: their time zone (IANA name), set with `timezone Area/City`."""

from __future__ import annotations

from storage.types import Executor


async def get_time_zone(db: Executor, *, chat_user_id: int) -> str | None:
    zone: str | None = await db.fetchval(
        "SELECT time_zone FROM chat_users WHERE id = $1", chat_user_id
    )
    return zone


async def set_time_zone(db: Executor, *, chat_user_id: int, zone: str | None) -> None:
    await db.execute("UPDATE chat_users SET time_zone = $2 WHERE id = $1", chat_user_id, zone)
