"""Enqueue background jobs on the job engine (PgQueuer), inside the caller's transaction.

The engine's tables are installed by migration 0006. A job is enqueued on the same
connection (and so in the same transaction) as the row it serves, so a crash
between the two leaves neither or both. Its dedupe key makes a second enqueue of
the same work a no-op while the first is queued or running: that is what keeps
one running job per post, per digest run and per account refresh.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from pgqueuer.queries import Queries

# The entrypoints (job kinds) the worker registers.
UPLOAD = "upload"
DIGEST = "digest"
REFRESH = "refresh"
PURGE = "purge"
KINDS = (UPLOAD, DIGEST, REFRESH, PURGE)


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(payload), separators=(",", ":")).encode()


def decode(payload: bytes | None) -> dict[str, Any]:
    """A job's payload; {} for none. ValueError for bytes that are not a JSON object."""
    if not payload:
        return {}
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("job payload is not a JSON object")
    return data


async def enqueue(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    kind: str,
    payload: Mapping[str, Any],
    *,
    dedupe_key: str,
    delay: timedelta | None = None,
) -> int | None:
    """Queue one job on `conn`; the engine's id, or None if the same key is already live."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    queries = _queries(conn)
    [job_id] = await queries.enqueue(
        kind, encode(payload), 0, delay, dedupe_key, None, on_conflict="skip"
    )
    return None if job_id is None else int(job_id)


async def enqueue_many(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    kind: str,
    jobs: Sequence[tuple[Mapping[str, Any], str]],
) -> int:
    """Queue (payload, dedupe key) jobs in one statement; returns how many were new."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    if not jobs:
        return 0
    queries = _queries(conn)
    ids = await queries.enqueue(
        [kind] * len(jobs),
        [encode(payload) for payload, _ in jobs],
        [0] * len(jobs),
        None,
        [key for _, key in jobs],
        None,
        on_conflict="skip",
    )
    return sum(1 for job_id in ids if job_id is not None)


def _queries(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> Queries:
    """The engine's queries on `conn`; PgQueuer (about 4 MiB) loads only in processes
    that enqueue, not in every one that imports this module."""
    from pgqueuer.queries import Queries

    return Queries.from_asyncpg_connection(conn)  # type: ignore[arg-type]
