"""Conversation history: a bounded window per thread, read newest-last in one query."""

from __future__ import annotations

import uuid

import asyncpg

from storage import conversations, identity


async def test_a_thread_keeps_a_bounded_window_however_long_it_runs(pool: asyncpg.Pool) -> None:
    ident = await identity.resolve(
        pool, frontend="local", workspace_external_id=uuid.uuid4().hex, user_external_id="u"
    )
    who = {"workspace_id": ident.workspace_id, "thread_key": "c:long"}
    for n in range(40):
        await conversations.append_exchange(
            pool,
            **who,
            chat_user_id=ident.chat_user_id,
            user_text=f"q{n}",
            reply_text=f"a{n}",
            keep=10,
        )
    stored = await pool.fetchval(
        "SELECT count(*) FROM conversation_messages WHERE workspace_id = $1 AND thread_key = $2",
        ident.workspace_id,
        "c:long",
    )
    assert stored == 10  # older rows go as new ones come: the read never meets a long thread
    turns = await conversations.recent(pool, **who, limit=4)
    assert [t.content for t in turns] == ["q38", "a38", "q39", "a39"]
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    other = await conversations.recent(
        pool, workspace_id=ident.workspace_id, thread_key="c:x", limit=4
    )
    assert other == []
