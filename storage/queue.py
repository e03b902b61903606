"""Enqueue background jobs on the job engine (PgQueuer), inside the caller's transaction.

The engine's tables are installed by migration 0006. A job is enqueued on the same
connection (and so in the same transaction) as the row it serves, so a crash
between the two leaves neither or both. Its dedupe key makes a second enqueue of
the same work a no-op while the first is queued or running: that is what keeps
one running job per post, per digest run and per account refresh.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta
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

# The trace context of the request that queues a job rides in its payload under this
# key (W3C traceparent headers), so the job's trace links back to it. The process's
# tracing setup installs the function that reads it; without tracing there is none.
TRACE_KEY = "_trace"
_trace_carrier: Callable[[], dict[str, str]] | None = None


def set_trace_carrier(carrier: Callable[[], dict[str, str]] | None) -> None:
    """Install (or remove, with None) the function that captures the trace context."""
    global _trace_carrier
    _trace_carrier = carrier


def take_trace_carrier(payload: MutableMapping[str, Any]) -> dict[str, str]:
    """Remove the carried trace context from a job's payload and return it ({} if none)."""
    carried = payload.pop(TRACE_KEY, None)
    if not isinstance(carried, dict):
        return {}
    return {str(k): str(v) for k, v in carried.items()}


def _with_trace(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    carrier = _trace_carrier
    if carrier is None:
        return payload
    headers = carrier()
    return {**payload, TRACE_KEY: headers} if headers else payload


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
        kind, encode(_with_trace(payload)), 0, delay, dedupe_key, None, on_conflict="skip"
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
        [encode(_with_trace(payload)) for payload, _ in jobs],
        [0] * len(jobs),
        None,
        [key for _, key in jobs],
        None,
        on_conflict="skip",
    )
    return sum(1 for job_id in ids if job_id is not None)


async def move(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, dedupe_key: str, at: datetime
) -> bool:
    """Run the queued job with this dedupe key at `at` instead; False if none is queued.

    Why hand-written: PgQueuer has no call to re-time a queued job. Only a 'queued'
    row moves (a picked one is running); the engine's trigger wakes idle workers.
    """
    result: str = await conn.execute(
        "UPDATE pgqueuer SET execute_after = $2, updated = now()"
        " WHERE dedupe_key = $1 AND status = 'queued'",
        dedupe_key,
        at,
    )
    return result.endswith(" 1")


async def drop(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, dedupe_key: str
) -> bool:
    """Delete the queued (not running) job with this dedupe key; False if none was queued."""
    result: str = await conn.execute(
        "DELETE FROM pgqueuer WHERE dedupe_key = $1 AND status = 'queued'", dedupe_key
    )
    return result.endswith(" 1")


def _queries(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> Queries:
    """The engine's queries on `conn`; PgQueuer (about 4 MiB) loads only in processes
    that enqueue, not in every one that imports this module."""
    from pgqueuer.queries import Queries

    return Queries.from_asyncpg_connection(conn)  # type: ignore[arg-type]
