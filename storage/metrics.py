"""Metric snapshots: what a platform reported at a time, so deltas need no extra calls.

Storage knows nothing of the metrics model: `metrics` is a JSON object written and
read by the agent (normalized metric name -> {"value", "source"}).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.types import Executor


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: int
    account_id: int
    post_id: int | None
    platform_post_id: str | None
    period: str
    captured_at: datetime
    metrics: dict[str, Any]


def _snapshot(row: Any) -> Snapshot:
    raw = row["metrics"]
    return Snapshot(
        id=row["id"],
        account_id=row["account_id"],
        post_id=row["post_id"],
        platform_post_id=row["platform_post_id"],
        period=row["period"],
        captured_at=row["captured_at"],
        metrics=json.loads(raw) if isinstance(raw, str) else dict(raw),
    )


async def record(
    db: Executor,
    *,
    account_id: int,
    metrics: dict[str, Any],
    captured_at: datetime,
    platform_post_id: str | None = None,
    period: str = "lifetime",
) -> int:
    """Append one snapshot (linked to our post row when we uploaded that post)."""
    snapshot_id: int = await db.fetchval(
        """
        INSERT INTO metric_snapshots (account_id, post_id, platform_post_id, period,
                                      captured_at, metrics)
        VALUES ($1,
                (SELECT p.id FROM posts p
                  WHERE p.account_id = $1 AND $2::text IS NOT NULL AND p.platform_post_id = $2),
                $2, $3, $4, $5::jsonb)
        RETURNING id
        """,
        account_id,
        platform_post_id,
        period,
        captured_at,
        json.dumps(metrics),
    )
    return snapshot_id


async def latest_before(
    db: Executor,
    *,
    account_id: int,
    before: datetime,
    platform_post_id: str | None = None,
    period: str = "lifetime",
) -> Snapshot | None:
    """The newest snapshot taken before `before` (for day-over-day deltas)."""
    row = await db.fetchrow(
        """
        SELECT id, account_id, post_id, platform_post_id, period, captured_at, metrics
          FROM metric_snapshots
         WHERE account_id = $1 AND period = $4 AND captured_at < $2
           AND platform_post_id IS NOT DISTINCT FROM $3
         ORDER BY captured_at DESC
         LIMIT 1
        """,
        account_id,
        before,
        platform_post_id,
        period,
    )
    return _snapshot(row) if row else None
