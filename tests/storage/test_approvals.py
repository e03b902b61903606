"""Approvals made outside a conversation: the cheap per-message check agrees with the claim."""

from __future__ import annotations

import uuid

import asyncpg

from storage import approvals, identity


async def test_the_check_sees_only_what_the_claim_would_take(pool: asyncpg.Pool) -> None:
    ident = await identity.resolve(
        pool, frontend="local", workspace_external_id=uuid.uuid4().hex, user_external_id="u"
    )
    who = {"workspace_id": ident.workspace_id, "chat_user_id": ident.chat_user_id}
    made = {"action": "unlink", "args": {"account": "yt1"}, "summary": "Unlink yt1"}
    await approvals.create(pool, **who, **made, ttl_seconds=600)  # asked in the conversation
    assert not await approvals.has_unshown(pool, **who)

    late = await approvals.create(pool, **who, **made, ttl_seconds=600, shown=False)
    await pool.execute(
        "UPDATE pending_actions SET expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(late.id),
    )
    assert not await approvals.has_unshown(pool, **who)  # expired: nothing to ask

    waiting = await approvals.create(pool, **who, **made, ttl_seconds=600, shown=False)
    assert await approvals.has_unshown(pool, **who)
    assert [p.id for p in await approvals.claim_unshown(pool, **who)] == [waiting.id]
    assert not await approvals.has_unshown(pool, **who)  # asked once
