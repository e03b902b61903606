"""Conversation history: a bounded window per thread, read newest-last in one query."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg

from storage import approvals, conversations, identity
from storage.identity import Identity


async def test_a_thread_keeps_a_bounded_window_however_long_it_runs(pool: asyncpg.Pool) -> None:
    ident, who = await _person_thread(pool, "c:long")
    for n in range(40):
        await conversations.append_exchange(
            pool,
            **who,
            chat_user_id=ident.chat_user_id,
            user_text=f"q{n}",
            reply_text=f"a{n}",
            keep=10,
            summary_bytes=2000,
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


async def test_the_read_meets_the_summary_and_the_window_not_the_whole_thread(
    pool: asyncpg.Pool,
) -> None:
    ident, who = await _person_thread(pool, "c:plan")
    for n in range(30):  # a summary and a full thread of 50 messages
        await conversations.append_exchange(
            pool, **who, chat_user_id=ident.chat_user_id, user_text=f"q{n}", reply_text=f"a{n}"
        )
    # Plans follow the table's size and statistics: a test table is a few pages, where
    # every plan costs the same. Give it other threads (200, each a summary and 50
    # messages, as a live table holds many) and its statistics, as autovacuum gathers them.
    await pool.execute(
        """
        INSERT INTO conversation_messages (workspace_id, thread_key, role, content)
        SELECT $1, 'c:other' || t,
               CASE WHEN m = 0 THEN 'summary' WHEN m % 2 = 0 THEN 'user' ELSE 'assistant' END,
               'm'
          FROM generate_series(1, 200) t, generate_series(0, 50) m
        """,
        ident.workspace_id,
    )
    await pool.execute("ANALYZE conversation_messages")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")  # a test table is tiny
        plan = await conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + conversations._WINDOW + " ORDER BY part, id",
            ident.workspace_id,
            "c:plan",
            4,
        )
    read = json.loads(plan)[0]["Plan"]
    # The summary by its own index, the window by the thread's: nothing read is filtered
    # out (no walk through the thread, or through the workspace's other summaries).
    indexes = {node["Index Name"] for node in _index_nodes(read)}
    assert indexes == {"conversation_messages_summary", "conversation_messages_thread"}, read
    assert _removed(read) == 0, read
    # The write's trim deletes by a range on the thread's index (`id <` the cut), not by
    # reading every kept message to compare it. (Run and rolled back: EXPLAIN ANALYZE
    # executes.)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SET LOCAL enable_seqscan = off")
            args = (ident.workspace_id, "c:plan", ident.chat_user_id, "q", "a", 0, 48, 2100)
            plan = await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + conversations._APPEND, *args
            )
        finally:
            await tx.rollback()
    [delete] = _nodes(json.loads(plan)[0]["Plan"], "Delete")
    conditions = [(node["Index Name"], node.get("Index Cond", "")) for node in _index_nodes(delete)]
    assert [index for index, _ in conditions] == ["conversation_messages_thread"], conditions
    assert "(id < " in conditions[0][1], conditions


def _nodes(node: dict[str, Any], operation: str) -> Any:
    """The plan nodes that run `operation` (Insert, Delete...), anywhere in a JSON plan."""
    if node.get("Operation") == operation:
        yield node
    for child in node.get("Plans", []):
        yield from _nodes(child, operation)


def _index_nodes(node: dict[str, Any]) -> Any:
    """Every node under `node` (itself included) that reads an index."""
    if "Index Name" in node:
        yield node
    for child in node.get("Plans", []):
        yield from _index_nodes(child)


def _removed(node: dict[str, Any]) -> float:
    """Rows read and then thrown away (by a filter or a recheck), over the whole plan."""
    here = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
    return here + sum(_removed(child) for child in node.get("Plans", []))


async def test_the_summary_keeps_the_newest_of_what_it_folds_within_its_budget(
    pool: asyncpg.Pool,
) -> None:
    ident, who = await _person_thread(pool, "c:wordy")
    for n in range(12):
        await conversations.append_exchange(
            pool,
            **who,
            chat_user_id=ident.chat_user_id,
            user_text=f"q{n} " + "x" * 600,
            reply_text=f"a{n}",
            keep=4,
            summary_bytes=2000,
        )
    [summary] = [t for t in await conversations.recent(pool, **who, limit=4) if t.role == "summary"]
    assert len(summary.content.encode()) == 2000  # cut to its budget...
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
    ident, thread = await _person_thread(pool, "c:both")
    where = {**thread, "limit": 4}
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
            **thread,
            chat_user_id=ident.chat_user_id,
            user_text=f"q{n}",
            reply_text=f"a{n}",
            keep=4,
            summary_bytes=2000,
        )
    turns, waiting = await conversations.recent_and_waiting(pool, **both)
    assert waiting
    assert turns == await conversations.recent(pool, **where)
    assert [t.role for t in turns] == ["summary", "user", "assistant", "user", "assistant"]

    await approvals.claim_unshown(pool, **who)
    assert await conversations.recent_and_waiting(pool, **both) == (turns, False)


async def _person_thread(pool: asyncpg.Pool, key: str) -> tuple[Identity, dict[str, Any]]:
    """A person in a new workspace, and their thread `key` there (workspace and key)."""
    ident = await identity.resolve(
        pool, frontend="local", workspace_external_id=uuid.uuid4().hex, user_external_id="u"
    )
    return ident, {"workspace_id": ident.workspace_id, "thread_key": key}


async def _thread(pool: asyncpg.Pool, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(a writer's arguments, a reader's) for a new thread in a new workspace."""
    _, where = await _person_thread(pool, key)
    return {**where, "chat_user_id": None}, where


async def test_the_cut_counts_bytes_and_never_splits_a_character(pool: asyncpg.Pool) -> None:
    """The budget is in UTF-8 bytes (the token estimate's unit): three-byte characters fill
    it three times faster than ASCII, and a cut lands on a character's first byte."""
    who, where = await _thread(pool, "c:cjk")
    for n in range(6):
        held = await conversations.append_exchange(
            pool,
            **who,
            user_text="語" * 200 + f"q{n}",
            reply_text=f"a{n}",
            keep=4,
            summary_bytes=301,
        )
        assert held == min(2 * (n + 1), 4)
    [summary] = [
        t for t in await conversations.recent(pool, **where, limit=4) if t.role == "summary"
    ]
    assert len(summary.content.encode()) <= 301
    assert summary.content.endswith("assistant: a3")
    assert summary.content.startswith("語")  # a whole character, never half of one
    cut = await pool.fetchval("SELECT utf8_tail($1, 4)", "ab語c")
    assert cut == "語c" and await pool.fetchval("SELECT utf8_tail($1, 3)", "ab語c") == "c"
    assert await pool.fetchval("SELECT utf8_tail($1, 0)", "abc") == ""


async def test_a_written_summary_replaces_the_messages_it_covers(pool: asyncpg.Pool) -> None:
    who, where = await _thread(pool, "c:model")
    for n in range(5):
        await conversations.append_exchange(
            pool, **who, user_text=f"q{n}", reply_text=f"a{n}", keep=50, summary_bytes=2000
        )
    read = await conversations.overflow(pool, **where, window=4, limit=50)
    assert read.summary is None
    assert [t.content for t in read.turns] == ["q0", "a0", "q1", "a1", "q2", "a2"]
    assert await conversations.replace_summary(pool, **where, read=read, text="first summary")
    turns = await conversations.recent(pool, **where, limit=4)
    assert [t.content for t in turns] == ["first summary", "q3", "a3", "q4", "a4"]
    # Once swapped in, the same read is stale: nothing changes a second time.
    assert not await conversations.replace_summary(pool, **where, read=read, text="again")

    await conversations.append_exchange(
        pool, **who, user_text="q5", reply_text="a5", keep=50, summary_bytes=2000
    )
    read = await conversations.overflow(pool, **where, window=4, limit=1)
    assert read.summary == "first summary" and [t.content for t in read.turns] == ["q3"]
    assert await conversations.replace_summary(pool, **where, read=read, text="second")
    turns = await conversations.recent(pool, **where, limit=10)
    assert [t.content for t in turns] == ["second", "a3", "q4", "a4", "q5", "a5"]
    short = await conversations.overflow(pool, **where, window=10, limit=50)
    assert short.turns == [] and short.summary == "second"


async def test_a_summary_swap_loses_to_a_fold_that_got_there_first(pool: asyncpg.Pool) -> None:
    """The history write's cut folded the same messages while the model was writing: the
    model's summary is dropped, the fold's kept (no turn lost, none counted twice)."""
    who, where = await _thread(pool, "c:race")
    for n in range(3):
        await conversations.append_exchange(
            pool, **who, user_text=f"q{n}", reply_text=f"a{n}", keep=6, summary_bytes=2000
        )
    read = await conversations.overflow(pool, **where, window=2, limit=50)
    assert len(read.turns) == 4
    await conversations.append_exchange(
        pool, **who, user_text="q3", reply_text="a3", keep=6, summary_bytes=2000
    )  # folds q0 and a0
    assert not await conversations.replace_summary(pool, **where, read=read, text="late")
    turns = await conversations.recent(pool, **where, limit=6)
    assert turns[0].content == "user: q0\nassistant: a0"
    assert [t.content for t in turns[1:]] == ["q1", "a1", "q2", "a2", "q3", "a3"]

    # A summary that changed since it was read is not overwritten either.
    read = await conversations.overflow(pool, **where, window=2, limit=50)
    await pool.execute(
        "UPDATE conversation_messages SET content = 'by another replica'"
        " WHERE workspace_id = $1 AND thread_key = $2 AND role = 'summary'",
        where["workspace_id"],
        "c:race",
    )
    assert not await conversations.replace_summary(pool, **where, read=read, text="mine")
    assert (await conversations.recent(pool, **where, limit=2))[0].content == "by another replica"
    assert len((await conversations.overflow(pool, **where, window=2, limit=50)).turns) == 4


async def test_concurrent_writers_keep_one_summary_with_every_turn(pool: asyncpg.Pool) -> None:
    """Folds from several replicas and a model swap, all at once on one thread: one summary
    row, and each message is either still there or in that summary, exactly once."""
    who, where = await _thread(pool, "c:many")
    for n in range(4):
        await conversations.append_exchange(
            pool, **who, user_text=f"q{n}", reply_text=f"a{n}", keep=6, summary_bytes=100_000
        )
    read = await conversations.overflow(pool, **where, window=2, limit=50)

    async def fold(n: int) -> None:
        await conversations.append_exchange(
            pool, **who, user_text=f"q{n}", reply_text=f"a{n}", keep=6, summary_bytes=100_000
        )

    results = await asyncio.gather(
        conversations.replace_summary(pool, **where, read=read, text="MODEL(q0..a2)"),
        *(fold(n) for n in range(4, 12)),
    )
    summaries = await pool.fetch(
        "SELECT content FROM conversation_messages"
        " WHERE workspace_id = $1 AND thread_key = $2 AND role = 'summary'",
        where["workspace_id"],
        "c:many",
    )
    assert len(summaries) == 1
    text = summaries[0]["content"]
    left = [t.content for t in await conversations.recent(pool, **where, limit=50)][1:]
    for n in range(12):
        for said in (f"q{n}", f"a{n}"):
            in_summary = f": {said}\n" in text + "\n"
            by_model = results[0] and n < 3
            assert [in_summary, by_model, said in left].count(True) == 1, said
