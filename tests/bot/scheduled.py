"""A scheduled post written straight into the database, for chat tests of the queue."""

from __future__ import annotations

import secrets
from datetime import datetime

import asyncpg

from storage import job_runs, queue
from storage.accounts import LinkedAccount
from storage.identity import Identity


async def scheduled_post(
    pool: asyncpg.Pool,
    ident: Identity,
    account: LinkedAccount,
    *,
    title: str,
    at: datetime,
    failed: str | None = None,
) -> int:
    """A post due at `at` with its queued job (or, given `failed`, its failed job); its number."""
    async with pool.acquire() as conn, conn.transaction():
        post_id = await conn.fetchval(
            """
            INSERT INTO posts (account_id, platform, title, idempotency_key, publish_at, error)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
            """,
            account.id,
            account.platform,
            title,
            "k-" + secrets.token_hex(6),
            at,
            failed,
        )
        run = await job_runs.create(
            conn,
            kind=queue.UPLOAD,
            workspace_id=ident.workspace_id,
            chat_user_id=ident.chat_user_id,
            label=f"upload '{title}'",
            reply_to={},
            post_id=post_id,
        )
        if failed:
            await conn.execute("UPDATE job_runs SET state = 'failed' WHERE id = $1", run.id)
    return run.id
