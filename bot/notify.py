"""Notifiers: how code outside a conversation (the OAuth callback, the worker) tells a
chat user something. Each front-end registers one for its name (`slack`, `discord`,
`local`); `reply_to` is whatever that front-end stored when the request was made.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Notifier = Callable[[dict[str, Any], str], Awaitable[None]]


class Notifiers:
    """A registry: front-end name -> `async def (reply_to, text) -> None`."""

    def __init__(self) -> None:
        self._by_frontend: dict[str, Notifier] = {}

    def register(self, frontend: str, notifier: Notifier) -> None:
        self._by_frontend[frontend] = notifier

    def get(self, frontend: str) -> Notifier | None:
        return self._by_frontend.get(frontend)

    async def notify(self, frontend: str, reply_to: dict[str, Any], text: str) -> bool:
        """Deliver `text`; False (logged, never raised) if no notifier or it failed."""
        notifier = self._by_frontend.get(frontend)
        if notifier is None:
            log.info("no notifier registered", extra={"frontend": frontend})
            return False
        try:
            await notifier(reply_to, text)
        except Exception:
            log.warning("notifier failed", extra={"frontend": frontend}, exc_info=True)
            return False
        return True
