"""What platforms reported: snapshots (each read's figures at a time; best-time reads
posts' first-day views from them, `storage.schedule`) and each day's figures (the
digest's deltas and chart), so neither needs extra platform calls.

Storage knows nothing of the metrics model: `metrics` is a JSON object written and
read by the agent (normalized metric name -> {"value", "source"}).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from storage.types import Executor


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


@dataclass(frozen=True, slots=True)
class DailyFigures:
    """One account's figures for one day (normalized name -> {"value", "source"})."""

    account_id: int
    day: date
    metrics: dict[str, Any]


def _daily(row: Any) -> DailyFigures:
    raw = row["metrics"]
    return DailyFigures(
        account_id=row["account_id"],
        day=row["day"],
        metrics=json.loads(raw) if isinstance(raw, str) else dict(raw),
    )


async def record_days(
    db: Executor,
    *,
    account_id: int,
    days: Sequence[tuple[date, dict[str, Any]]],
    captured_at: datetime,
) -> None:
    """Keep each day's figures; a newer read of a day overrides the metrics it has and
    keeps those it lacks (a series may carry fewer metrics than a one-day read)."""
    if not days:
        return
    await db.executemany(
        """
        INSERT INTO account_daily_figures (account_id, day, metrics, captured_at)
        VALUES ($1, $2, $3::jsonb, $4)
        ON CONFLICT (account_id, day) DO UPDATE
           SET metrics = CASE WHEN EXCLUDED.captured_at >= account_daily_figures.captured_at
                              THEN account_daily_figures.metrics || EXCLUDED.metrics
                              ELSE EXCLUDED.metrics || account_daily_figures.metrics END,
               captured_at = greatest(EXCLUDED.captured_at, account_daily_figures.captured_at)
        """,
        [(account_id, day, json.dumps(figures), captured_at) for day, figures in days],
    )


async def days_between(
    db: Executor, *, account_ids: Sequence[int], first: date, last: date
) -> list[DailyFigures]:
    """The stored days of these accounts in [first, last], by account then day."""
    rows = await db.fetch(
        """
        SELECT account_id, day, metrics FROM account_daily_figures
         WHERE account_id = ANY($1::bigint[]) AND day BETWEEN $2 AND $3
         ORDER BY account_id, day
        """,
        list(account_ids),
        first,
        last,
    )
    return [_daily(r) for r in rows]


async def latest_day_before(db: Executor, *, account_id: int, before: date) -> DailyFigures | None:
    """The newest stored day before `before` (the day a delta compares with)."""
    row = await db.fetchrow(
        """
        SELECT account_id, day, metrics FROM account_daily_figures
         WHERE account_id = $1 AND day < $2 ORDER BY day DESC LIMIT 1
        """,
        account_id,
        before,
    )
    return _daily(row) if row else None
