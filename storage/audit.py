"""Audit log of who did what to which account: appended by the actions, read by
workspace admins (the `audit` command, GET /api/v1/audit), purged after the
retention period by the job engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.types import Executor


async def record(
    db: Executor,
    *,
    action: str,
    outcome: str,
    workspace_id: int | None = None,
    chat_user_id: int | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry. `detail` must never hold a secret: callers pass ids and counts."""
    await db.execute(
        """
        INSERT INTO audit_log (workspace_id, chat_user_id, action, target, outcome, detail)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb)
        """,
        workspace_id,
        chat_user_id,
        action,
        target,
        outcome,
        json.dumps(detail or {}),
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row as an admin reads it: people by their chat ids and names."""

    id: int
    at: datetime
    action: str
    target: str | None
    outcome: str
    actor_external_id: str | None
    actor_name: str | None
    # For an approval: who asked for the action (the actor is who approved it).
    requester_external_id: str | None
    requester_name: str | None


async def find_member(db: Executor, *, workspace_id: int, who: str) -> int | None:
    """A workspace member's chat user id, by their external id or display name."""
    found = await db.fetchval(
        """
        SELECT id FROM chat_users
         WHERE workspace_id = $1 AND (external_id = $2 OR lower(display_name) = lower($2))
         ORDER BY external_id = $2 DESC, id
         LIMIT 1
        """,
        workspace_id,
        who,
    )
    return None if found is None else int(found)


async def query(
    db: Executor,
    *,
    workspace_id: int,
    chat_user_id: int | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """The workspace's entries, newest first; never another workspace's.

    `chat_user_id` matches the person who acted or who asked (an approval's requester);
    `action` matches the action, its requests and its approvals ("upload" finds
    "request:upload" and "approval:upload").
    """
    rows = await db.fetch(
        """
        SELECT a.id, a.at, a.action, a.target, a.outcome,
               actor.external_id AS actor_external_id, actor.display_name AS actor_name,
               req.external_id AS requester_external_id, req.display_name AS requester_name
          FROM audit_log a
          LEFT JOIN chat_users actor ON actor.id = a.chat_user_id
          LEFT JOIN chat_users req
                 ON req.id = (a.detail ->> 'requested_by')::bigint
                AND req.workspace_id = a.workspace_id
         WHERE a.workspace_id = $1
           AND ($2::bigint IS NULL OR a.chat_user_id = $2 OR req.id = $2)
           AND ($3::text IS NULL OR a.action = $3 OR split_part(a.action, ':', 2) = $3)
           AND ($4::timestamptz IS NULL OR a.at >= $4)
           AND ($5::timestamptz IS NULL OR a.at < $5)
         ORDER BY a.at DESC, a.id DESC
         LIMIT $6
        """,
        workspace_id,
        chat_user_id,
        action,
        since,
        until,
        limit,
    )
    return [AuditEntry(**dict(row)) for row in rows]


async def purge_older_than(db: Executor, *, days: int) -> int:
    """Delete entries older than `days` days (the retention setting); how many went."""
    status = await db.execute(
        "DELETE FROM audit_log WHERE at < now() - make_interval(days => $1)", days
    )
    return int(status.split()[-1])
