"""Wait before X says 429, not after: per-endpoint windows read from X's headers.

Every X answer carries ``x-rate-limit-limit``, ``x-rate-limit-remaining`` and
``x-rate-limit-reset`` (Unix seconds) for the endpoint and the token that called it
(docs.x.com, "Rate limits"). `RatePacer` keeps the last figures per (endpoint, token)
and, before a call, takes one from `remaining`; with none left it sleeps until the
reset when that is close (`max_wait`), and otherwise refuses with `RateLimited`
before anything is sent. It never retries: retries live in the shared transport.

State is per process; X counts per user token, so the key is the endpoint and a
fingerprint of the token (never the token itself).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from integrations.errors import RateLimited, format_wait
from integrations.x._errors import PLATFORM

MAX_WINDOWS = 4096  # forget finished windows past this many, so memory stays flat
CLOCK_MARGIN = 1.0  # resets are whole seconds on X's clock, not ours: wait a second more


@dataclass(slots=True)
class Clock:
    """Wall time (X's resets are Unix seconds) and a sleep; tests swap both for a fake."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)


@dataclass(slots=True)
class Window:
    """What X last said about one endpoint for one token."""

    limit: int
    remaining: int
    reset_at: float


def pacing_key(endpoint: str, token: str | None) -> str:
    """`endpoint` plus a short fingerprint of the token ("app" for client-authenticated calls)."""
    if token is None:
        return f"{endpoint}|app"
    return f"{endpoint}|{hashlib.sha256(token.encode()).hexdigest()[:16]}"


def window_from_headers(headers: Mapping[str, str]) -> Window | None:
    """The window an answer reports, or None when it carries no (readable) rate headers."""
    try:
        return Window(
            limit=int(headers["x-rate-limit-limit"]),
            remaining=int(headers["x-rate-limit-remaining"]),
            reset_at=float(headers["x-rate-limit-reset"]),
        )
    except (KeyError, ValueError):
        return None


class RatePacer:
    """Holds or refuses calls whose endpoint window X reported as spent."""

    def __init__(self, *, clock: Clock, max_wait: float) -> None:
        self.clock = clock
        self.max_wait = max_wait
        self._windows: dict[str, Window] = {}

    def window(self, key: str) -> Window | None:
        return self._windows.get(key)

    async def before(self, key: str) -> None:
        """Take one call from the window, sleeping until its reset if it is short and spent."""
        window = self._windows.get(key)
        if window is None:
            return
        if window.remaining > 0:
            window.remaining -= 1  # concurrent callers share what is left
            return
        wait = window.reset_at + CLOCK_MARGIN - self.clock.now()
        if wait <= 0:
            del self._windows[key]
            return
        if wait > self.max_wait:
            raise RateLimited(
                f"X's rate limit for this is used up; try again in about {format_wait(wait)}.",
                platform=PLATFORM,
                reason="rate_limit_window",
                retry_after=wait,
            )
        await self.clock.sleep(wait)
        self._windows.pop(key, None)  # a new window: the answer will say how much is left

    def after(self, key: str, headers: Mapping[str, str]) -> None:
        """Remember what the answer says about the window."""
        window = window_from_headers(headers)
        if window is None:
            return
        if len(self._windows) >= MAX_WINDOWS:
            now = self.clock.now()
            for stale in [k for k, w in self._windows.items() if w.reset_at <= now]:
                del self._windows[stale]
            while len(self._windows) >= MAX_WINDOWS:
                del self._windows[next(iter(self._windows))]  # the oldest entry
        self._windows[key] = window
