"""OAuth link pages: `/oauth/{platform}/start` and `/oauth/{platform}/callback`.

`start` redirects to the platform's consent page for a pending link; `callback`
completes it (`agent.ops.linking`: the state is consumed once, the code exchanged with
the stored PKCE verifier, the tokens stored encrypted), tells the chat user, and shows
a page naming the account and the chat user. Anything wrong (reused, expired, tampered, declined) is a readable 400 page.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent.ops.linking import Linking, LinkRefused
from bot.notify import Notifiers
from integrations.errors import IntegrationError
from integrations.registry import Platforms

log = logging.getLogger(__name__)


def _page(title: str, body: str, status: int) -> HTMLResponse:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{body}</p></body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers={"Cache-Control": "no-store"})


def _problem(text: str, platform: str, status: int = 400) -> HTMLResponse:
    hint = f" Ask the bot for a new link (say <code>link {html.escape(platform)}</code>)."
    return _page("Linking did not work", html.escape(text) + hint, status)


def build_oauth_router(
    *, linking: Callable[[], Linking], platforms: Platforms, notifiers: Notifiers
) -> APIRouter:
    """The router; `linking` is a getter because it needs the pool, opened after the app."""
    router = APIRouter()

    @router.get("/oauth/{platform}/start", response_model=None)
    async def start(platform: str, s: str | None = None) -> Response:
        if platform not in platforms.configured():
            return _page("Unknown platform", "That platform is not set up here.", 404)
        if not s:
            return _problem("This link is incomplete.", platform)
        try:
            url = await linking().consent_url(platform, s)
        except LinkRefused as exc:
            return _problem(str(exc), platform)
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    @router.get("/oauth/{platform}/callback", response_model=None)
    async def callback(
        platform: str,
        state: str | None = None,
        code: str | None = None,
        error: str | None = None,
    ) -> Response:
        if platform not in platforms.configured():
            return _page("Unknown platform", "That platform is not set up here.", 404)
        if not state:
            return _problem("The answer from the platform has no state.", platform)
        try:
            done = await linking().complete_link(platform, state=state, code=code, error=error)
        except LinkRefused as exc:
            return _problem(str(exc), platform)
        except IntegrationError as exc:
            log.warning("oauth callback failed", extra={"error": type(exc).__name__})
            return _problem(exc.user_message, platform, 400 if exc.status == 400 else 502)
        except ValueError:
            # An answer that is not JSON (or lacks a field): the person gets a page.
            log.warning("oauth callback: unreadable answer", extra={"platform": platform})
            return _problem(
                "The platform's answer could not be read; nothing was linked.", platform, 502
            )
        pending, profile, display = done.pending, done.profile, done.display_name
        handle = platforms.capabilities(platform).handle(profile.handle)
        who = pending.user_display_name or pending.user_external_id
        await notifiers.notify(
            pending.frontend,
            pending.reply_to,
            f"Linked {display} {profile.display_name} ({handle}) as {done.account.ref}.",
        )
        return _page(
            f"{display} linked",
            f"Linked {html.escape(display)} <b>{html.escape(profile.display_name)}</b>"
            f" for <b>{html.escape(who)}</b>. You can close this tab and go back to the chat.",
            200,
        )

    return router
