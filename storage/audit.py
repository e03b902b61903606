"""Append-only audit log of who did what to which account."""

from __future__ import annotations

import json
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
