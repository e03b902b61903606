"""Pending actions: side effects waiting for a person's yes.

A pending action is bound to the requesting user and to a sha256 of the
canonical JSON of its exact arguments. Claiming it is one atomic UPDATE that
only succeeds while it is pending and unexpired, so a second or late click, or
another user's click, claims nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from storage.types import Executor

_COLUMNS = (
    "id, workspace_id, chat_user_id, action, args, args_hash, summary, status, result,"
    " created_at, expires_at, decided_at"
)


def canonical_json(action: str, args: dict[str, Any]) -> str:
    """One spelling per (action, args): sorted keys, no whitespace, ASCII only."""
    return json.dumps(
        {"action": action, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )


def args_hash(action: str, args: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json(action, args).encode()).digest()


@dataclass(frozen=True, slots=True)
class PendingAction:
    id: str
    workspace_id: int
    chat_user_id: int
    action: str
    args: dict[str, Any]
    args_hash: bytes
    summary: str
    status: str
    result: str | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None

    @property
    def hash_matches(self) -> bool:
        """False if the stored arguments no longer hash to what was approved for."""
        return args_hash(self.action, self.args) == self.args_hash

    @classmethod
    def from_row(cls, row: Any) -> PendingAction:
        args = row["args"]
        return cls(
            id=str(row["id"]),
            workspace_id=row["workspace_id"],
            chat_user_id=row["chat_user_id"],
            action=row["action"],
            args=json.loads(args) if isinstance(args, str) else dict(args),
            args_hash=bytes(row["args_hash"]),
            summary=row["summary"],
            status=row["status"],
            result=row["result"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            decided_at=row["decided_at"],
        )


async def create(
    db: Executor,
    *,
    workspace_id: int,
    chat_user_id: int,
    action: str,
    args: dict[str, Any],
    summary: str,
    ttl_seconds: int,
    shown: bool = True,
) -> PendingAction:
    """Store a new pending action that expires `ttl_seconds` from now (database clock).

    `shown=False` for one made outside a conversation (for someone who is not the
    one talking): `claim_unshown` hands it over the next time that person talks.
    """
    row = await db.fetchrow(
        f"""
        INSERT INTO pending_actions
            (id, workspace_id, chat_user_id, action, args, args_hash, summary, expires_at,
             shown_at)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, now() + make_interval(secs => $8),
                CASE WHEN $9 THEN now() END)
        RETURNING {_COLUMNS}
        """,
        uuid.uuid4(),
        workspace_id,
        chat_user_id,
        action,
        json.dumps(args),
        args_hash(action, args),
        summary,
        float(ttl_seconds),
        shown,
    )
    return PendingAction.from_row(row)


async def has_unshown(db: Executor, *, workspace_id: int, chat_user_id: int) -> bool:
    """Whether `claim_unshown` would find anything: a read on the partial index
    `pending_actions_unshown`, cheap enough for every message (the claim writes)."""
    found: bool = await db.fetchval(
        f"SELECT EXISTS ({unshown_sql(workspace='$1', chat_user='$2')})", workspace_id, chat_user_id
    )
    return found


def unshown_sql(*, workspace: str, chat_user: str) -> str:
    """The rows `has_unshown` looks for, for a query of its own or one that reads them
    alongside something else (`workspace`, `chat_user`: their placeholders)."""
    return (
        "SELECT 1 FROM pending_actions"
        f" WHERE workspace_id = {workspace} AND chat_user_id = {chat_user} AND shown_at IS NULL"
        "   AND status = 'pending' AND expires_at > now()"
    )


async def claim_unshown(
    db: Executor, *, workspace_id: int, chat_user_id: int
) -> list[PendingAction]:
    """Live approvals for this person not yet put in front of them, marked shown (once)."""
    rows = await db.fetch(
        f"""
        UPDATE pending_actions SET shown_at = now()
         WHERE workspace_id = $1 AND chat_user_id = $2 AND shown_at IS NULL
           AND status = 'pending' AND expires_at > now()
        RETURNING {_COLUMNS}
        """,
        workspace_id,
        chat_user_id,
    )
    return sorted((PendingAction.from_row(r) for r in rows), key=lambda p: p.created_at)


def waiting_sql(*, workspace: str, chat_user: str, action: str) -> str:
    """The condition on `pending_actions` rows `list_waiting` returns, for its own query
    or one that asks alongside something else (`workspace`, `chat_user`, `action`: their
    placeholders)."""
    return (
        f"workspace_id = {workspace} AND chat_user_id = {chat_user} AND action = {action}"
        " AND status = 'pending' AND expires_at > now()"
    )


async def list_waiting(
    db: Executor, *, workspace_id: int, chat_user_id: int, action: str
) -> list[PendingAction]:
    """This person's live, undecided approvals of one kind, oldest first."""
    waiting = waiting_sql(workspace="$1", chat_user="$2", action="$3")
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM pending_actions WHERE {waiting} ORDER BY created_at",
        workspace_id,
        chat_user_id,
        action,
    )
    return [PendingAction.from_row(r) for r in rows]


def _uuid(action_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(action_id)
    except (ValueError, AttributeError, TypeError):
        return None


async def get(db: Executor, *, action_id: str) -> PendingAction | None:
    key = _uuid(action_id)
    if key is None:
        return None
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM pending_actions WHERE id = $1", key)
    return PendingAction.from_row(row) if row else None


Refusal = Literal["not_found", "wrong_user", "already_decided", "expired"]


async def decide(
    db: Executor,
    *,
    action_id: str,
    workspace_id: int,
    chat_user_id: int,
    approved: bool,
) -> PendingAction | Refusal:
    """Atomically move a pending action to approved/rejected, or say why it cannot be.

    Only the requester, only once, only before it expires. The UPDATE is the
    gate; the follow-up read only explains a refusal.
    """
    key = _uuid(action_id)
    if key is None:
        return "not_found"
    row = await db.fetchrow(
        f"""
        UPDATE pending_actions
           SET status = $4, decided_at = now()
         WHERE id = $1 AND workspace_id = $2 AND chat_user_id = $3
           AND status = 'pending' AND expires_at > now()
        RETURNING {_COLUMNS}
        """,
        key,
        workspace_id,
        chat_user_id,
        "approved" if approved else "rejected",
    )
    if row is not None:
        return PendingAction.from_row(row)
    current = await db.fetchrow(
        "SELECT workspace_id, chat_user_id, status, expires_at > now() AS live"
        " FROM pending_actions WHERE id = $1",
        key,
    )
    if current is None or current["workspace_id"] != workspace_id:
        return "not_found"
    if current["chat_user_id"] != chat_user_id:
        return "wrong_user"
    if current["status"] != "pending":
        return "already_decided"
    return "expired"


async def finish(db: Executor, *, action_id: str, status: str, result: str) -> None:
    """Record the outcome of an approved action (`done` or `failed`)."""
    await db.execute(
        "UPDATE pending_actions SET status = $2, result = $3 WHERE id = $1",
        uuid.UUID(action_id),
        status,
        result[:2000],
    )
