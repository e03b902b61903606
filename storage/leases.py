"""Named leases in Postgres: each name has at most one holder, until it lets go or stops
renewing before `expires_at`.

A set of names is claimed all or nothing, in one transaction: a holder never ends up
with part of what it asked for. Nothing here holds a session (no advisory lock), so it
works through a transaction pooler; a holder that dies simply stops renewing, and its
names are free once they expire.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.types import Executor


class _Partial(Exception):
    """Raised inside the claim's transaction to undo the names it did get."""


async def acquire(
    pool: asyncpg.Pool, names: Sequence[str], *, holder: str, ttl_seconds: float
) -> bool:
    """Claim every name in `names` for `holder` (free, expired, or already its own), or
    none of them; whether it got them."""
    wanted = sorted(set(names))  # one order for every claimer: no deadlock between them
    try:
        async with pool.acquire() as conn, conn.transaction():
            got = await conn.fetch(
                """
                INSERT INTO leases AS l (name, holder, expires_at)
                SELECT n, $2, now() + make_interval(secs => $3)
                  FROM unnest($1::text[]) AS n
                ON CONFLICT (name) DO UPDATE
                   SET holder = EXCLUDED.holder,
                       expires_at = EXCLUDED.expires_at,
                       acquired_at = CASE WHEN l.holder = EXCLUDED.holder
                                          THEN l.acquired_at ELSE now() END
                 WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
                RETURNING name
                """,
                wanted,
                holder,
                ttl_seconds,
            )
            if len(got) < len(wanted):
                raise _Partial
    except (_Partial, asyncpg.DeadlockDetectedError):
        return False
    return True


async def renew(db: Executor, names: Sequence[str], *, holder: str, ttl_seconds: float) -> bool:
    """Extend `holder`'s leases; False if it no longer holds every one of them."""
    wanted = sorted(set(names))
    got = await db.fetch(
        """
        UPDATE leases SET expires_at = now() + make_interval(secs => $3)
         WHERE name = ANY($1::text[]) AND holder = $2 AND expires_at >= now()
        RETURNING name
        """,
        wanted,
        holder,
        ttl_seconds,
    )
    return len(got) == len(wanted)


async def release(db: Executor, names: Sequence[str], *, holder: str) -> None:
    """Let go of `holder`'s leases on `names` (others' are untouched)."""
    await db.execute(
        "DELETE FROM leases WHERE name = ANY($1::text[]) AND holder = $2", list(names), holder
    )


async def holders(db: Executor, names: Sequence[str]) -> dict[str, str]:
    """Who holds each of `names` now (unexpired leases only)."""
    rows = await db.fetch(
        "SELECT name, holder FROM leases WHERE name = ANY($1::text[]) AND expires_at >= now()",
        list(names),
    )
    return {r["name"]: r["holder"] for r in rows}
