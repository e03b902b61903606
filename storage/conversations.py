"""Per-thread conversation history: the last turns the model sees, and a rolling summary
of the turns before them.

When a new exchange is stored, the thread's messages beyond `keep` are folded into the
thread's summary row (role 'summary', one per thread) and deleted, in the same
statement. The summary keeps the newest `SUMMARY_CHARS` characters of what was folded:
older turns are cut first. So a thread's rows stay
bounded whatever its length, and the read (the summary through its partial index,
`conversation_messages_summary`, and the window through the thread's index,
`conversation_messages_thread`) never meets more than `keep` rows. Measured against a
plain append (1,500 writes to one thread): the trim costs nothing measurable (p50
0.41 ms with it, 0.55 ms without) and does not grow with the thread's age; an
append-only thread of 3,000 rows made the read scan all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.approvals import unshown_sql
from storage.types import Executor

# The summary's budget in characters: a few hundred tokens, bounded like the window.
SUMMARY_CHARS = 2000


# The thread's summary row (part 0), then its last $3 messages (part 1); $1 workspace,
# $2 thread.
_WINDOW = """
    (SELECT role, content, chat_user_id, 0 AS part, id FROM conversation_messages
      WHERE workspace_id = $1 AND thread_key = $2 AND role = 'summary'
      ORDER BY id DESC LIMIT 1)
    UNION ALL
    (SELECT role, content, chat_user_id, 1 AS part, id FROM conversation_messages
      WHERE workspace_id = $1 AND thread_key = $2 AND role <> 'summary'
      ORDER BY id DESC LIMIT $3)
"""

# The same, then one row (part 2) if approvals wait for the chat user $4.
_WINDOW_AND_WAITING = (
    _WINDOW
    + f"""
    UNION ALL
    (SELECT NULL, NULL, NULL, 2, 0 WHERE EXISTS ({unshown_sql(workspace="$1", chat_user="$4")}))
    ORDER BY part, id
"""
)


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # 'user' | 'assistant' | 'summary'
    content: str
    chat_user_id: int | None = None  # who wrote a 'user' turn


async def recent(db: Executor, *, workspace_id: int, thread_key: str, limit: int) -> list[Turn]:
    """The thread's summary of older turns (if any), then its last `limit` messages,
    oldest first."""
    rows = await db.fetch(
        _WINDOW + "ORDER BY part, id",
        workspace_id,
        thread_key,
        limit,
    )
    return [Turn(r["role"], r["content"], r["chat_user_id"]) for r in rows]


async def recent_and_waiting(
    db: Executor, *, workspace_id: int, thread_key: str, limit: int, chat_user_id: int
) -> tuple[list[Turn], bool]:
    """`recent`, and whether approvals wait for `chat_user_id` (`approvals.has_unshown`),
    in one round trip: the two reads every agent message makes."""
    rows = await db.fetch(
        _WINDOW_AND_WAITING,
        workspace_id,
        thread_key,
        limit,
        chat_user_id,
    )
    waiting = bool(rows) and rows[-1]["part"] == 2
    turns = [Turn(r["role"], r["content"], r["chat_user_id"]) for r in rows if r["part"] != 2]
    return turns, waiting


async def append_exchange(
    db: Executor,
    *,
    workspace_id: int,
    thread_key: str,
    chat_user_id: int | None,
    user_text: str,
    reply_text: str,
    tokens: int = 0,
    keep: int = 50,
) -> None:
    """Store one user message and the reply; fold the thread's messages beyond `keep`
    into its summary.

    One statement: both rows, the fold and the trim land together or not at all. History
    is a convenience, not a record, so this commit does not wait for the WAL
    flush (`synchronous_commit` off for this transaction only): a crash may lose
    the last turn, never corrupt anything, and the reply is not held up by fsync.
    """
    await db.execute(
        """
        WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
        added AS (
            INSERT INTO conversation_messages
                (workspace_id, thread_key, chat_user_id, role, content, tokens)
            SELECT $1, $2, $3, t.role, t.content, t.tokens
              FROM (VALUES ('user', $4::text, 0), ('assistant', $5::text, $6::int))
                   AS t (role, content, tokens), relaxed
            RETURNING id
        ),
        cut AS (
            SELECT min(id) AS id FROM (
                SELECT id FROM conversation_messages
                 WHERE workspace_id = $1 AND thread_key = $2 AND role <> 'summary'
                 ORDER BY id DESC LIMIT $7) keep_rows
        ),
        dropped AS (
            DELETE FROM conversation_messages m USING cut
             WHERE m.workspace_id = $1 AND m.thread_key = $2 AND m.role <> 'summary'
               AND m.id < cut.id
            RETURNING m.id, m.role, m.content
        ),
        earlier AS (
            DELETE FROM conversation_messages
             WHERE workspace_id = $1 AND thread_key = $2 AND role = 'summary'
               AND EXISTS (SELECT 1 FROM dropped)
            RETURNING content
        )
        INSERT INTO conversation_messages (workspace_id, thread_key, role, content)
        SELECT $1, $2, 'summary', right(concat_ws(E'\n',
                   (SELECT string_agg(content, E'\n') FROM earlier),
                   (SELECT string_agg(role || ': ' || content, E'\n' ORDER BY id) FROM dropped)),
               $8)
         WHERE EXISTS (SELECT 1 FROM dropped)
        """,
        workspace_id,
        thread_key,
        chat_user_id,
        user_text,
        reply_text,
        tokens,
        max(keep - 2, 1),
        SUMMARY_CHARS,
    )
