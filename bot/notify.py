"""Notifiers: how code outside a conversation (the OAuth callback, the worker) tells a
chat user something. Each front-end registers one for its name (`slack`, `discord`,
`local`); `reply_to` is whatever that front-end stored when the request was made.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from agent.layout import Layout

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """One front-end's way to tell a person something (`layout`: with its buttons)."""

    def __call__(
        self, reply_to: dict[str, Any], text: str, /, *, layout: Layout | None = None
    ) -> Awaitable[None]: ...


class Notifiers:
    """A registry: front-end name -> `async def (reply_to, text, *, layout) -> None`."""

    def __init__(self) -> None:
        self._by_frontend: dict[str, Notifier] = {}

    def register(self, frontend: str, notifier: Notifier) -> None:
        self._by_frontend[frontend] = notifier

    def get(self, frontend: str) -> Notifier | None:
        return self._by_frontend.get(frontend)

    async def notify(
        self,
        frontend: str,
        reply_to: dict[str, Any],
        text: str,
        /,
        *,
        layout: Layout | None = None,
    ) -> bool:
        """Deliver `text`; False (logged, never raised) if no notifier or it failed."""
        notifier = self._by_frontend.get(frontend)
        if notifier is None:
            log.info("no notifier registered", extra={"frontend": frontend})
            return False
        try:
            if layout is None:
                await notifier(reply_to, text)
            else:
                await notifier(reply_to, text, layout=layout)
        except Exception:
            log.warning("notifier failed", extra={"frontend": frontend}, exc_info=True)
            return False
        return True
