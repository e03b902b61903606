"""Background jobs as the worker runs them: uploads, digests, token refreshes, purges.

The job engine (PgQueuer, wired in bot.worker) decides which worker runs a job and
when; the handlers here do the work and tell the requester. They raise `RetryLater`
for work worth trying again; bot.worker turns it into the engine's retry.
"""

from __future__ import annotations


class RetryLater(Exception):
    """Run this job again after `delay` seconds (the same job: its progress is kept)."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


def backoff(attempt: int, *, base: float = 2.0, ceiling: float = 300.0) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): doubling, capped."""
    return float(min(base * 2 ** max(attempt - 1, 0), ceiling))
