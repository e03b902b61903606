"""Conversation history: a bounded window per thread, read newest-last in one query."""

from __future__ import annotations

import uuid

import asyncpg

from storage import approvals, conversations, identity


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
    stored = await pool.fetch(
        "SELECT role = 'summary' AS summary, count(*) AS n FROM conversation_messages"
        " WHERE workspace_id = $1 AND thread_key = $2 GROUP BY 1 ORDER BY 1",
        ident.workspace_id,
        "c:long",
    )
    # Older rows go as new ones come (the read never meets a long thread), into one summary.
    assert [r["n"] for r in stored] == [10, 1]
    turns = await conversations.recent(pool, **who, limit=4)
    assert [t.content for t in turns[1:]] == ["q38", "a38", "q39", "a39"]
    assert [t.role for t in turns] == ["summary", "user", "assistant", "user", "assistant"]
    # The summary holds what was folded, oldest first, up to the turn before the window.
    summary = turns[0].content.splitlines()
    assert summary[:2] == ["user: q0", "assistant: a0"]
    assert summary[-2:] == ["user: q34", "assistant: a34"]
    other = await conversations.recent(
        pool, workspace_id=ident.workspace_id, thread_key="c:x", limit=4
    )
    assert other == []


async def test_the_summary_keeps_the_newest_of_what_it_folds_within_its_budget(
    pool: asyncpg.Pool,
) -> None:
    ident = await identity.resolve(
        pool, frontend="local", workspace_external_id=uuid.uuid4().hex, user_external_id="u"
    )
    who = {"workspace_id": ident.workspace_id, "thread_key": "c:wordy"}
    for n in range(12):
        await conversations.append_exchange(
            pool,
            **who,
            chat_user_id=ident.chat_user_id,
            user_text=f"q{n} " + "x" * 600,
            reply_text=f"a{n}",
            keep=4,
        )
    [summary] = [t for t in await conversations.recent(pool, **who, limit=4) if t.role == "summary"]
    assert len(summary.content) == conversations.SUMMARY_CHARS  # cut to its budget...
    assert summary.content.endswith("assistant: a9")  # ...keeping the newest folded turns
    assert "q0 " not in summary.content  # the oldest went first
    rows = await pool.fetchval(
        "SELECT count(*) FROM conversation_messages WHERE workspace_id = $1 AND thread_key = $2",
        ident.workspace_id,
        "c:wordy",
    )
    assert rows == 5  # the window and one summary, however long the thread runs


async def test_the_history_read_also_says_whether_approvals_wait(pool: asyncpg.Pool) -> None:
    """One query for both reads of an agent message: the same turns as `recent`, and the
    same answer as `approvals.has_unshown`, with or without history."""
    ident = await identity.resolve(
        pool, frontend="local", workspace_external_id=uuid.uuid4().hex, user_external_id="u"
    )
    where = {"workspace_id": ident.workspace_id, "thread_key": "c:both", "limit": 4}
    both = {**where, "chat_user_id": ident.chat_user_id}
    assert await conversations.recent_and_waiting(pool, **both) == ([], False)

    who = {"workspace_id": ident.workspace_id, "chat_user_id": ident.chat_user_id}
    await approvals.create(
        pool, **who, action="unlink", args={}, summary="Unlink", ttl_seconds=600, shown=False
    )
    assert await conversations.recent_and_waiting(pool, **both) == ([], True)

    for n in range(3):
        await conversations.append_exchange(
            pool,
            workspace_id=ident.workspace_id,
            thread_key="c:both",
            chat_user_id=ident.chat_user_id,
            user_text=f"q{n}",
            reply_text=f"a{n}",
            keep=4,
        )
    turns, waiting = await conversations.recent_and_waiting(pool, **both)
    assert waiting
    assert turns == await conversations.recent(pool, **where)
    assert [t.role for t in turns] == ["summary", "user", "assistant", "user", "assistant"]

    await approvals.claim_unshown(pool, **who)
    assert await conversations.recent_and_waiting(pool, **both) == (turns, False)
