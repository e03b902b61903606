"""OAuth link pages: `/oauth/{platform}/start` and `/oauth/{platform}/callback`.

`start` looks up the pending link (by the hash of `s`) and redirects to the
platform's consent page; `callback` consumes the state once (`DELETE ... RETURNING`),
exchanges the code with the stored PKCE verifier, reads the account, stores the
tokens encrypted, tells the chat user, and shows a page naming the account and the
chat user. Anything wrong (reused, expired, tampered, declined) is a readable 400 page.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import asyncpg
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.notify import Notifiers
from integrations.base import SocialPlatform
from integrations.errors import IntegrationError
from storage import accounts, audit, oauth_states
from storage.crypto import DecryptionError, TokenCipher

log = logging.getLogger(__name__)


def _page(title: str, body: str, status: int) -> HTMLResponse:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{body}</p></body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers={"Cache-Control": "no-store"})


def _unusable(pending: oauth_states.OAuthState | None, platform: str) -> Response | None:
    """The 400 page for a state that is unknown, already used or expired; None if usable."""
    if pending is None:
        return _problem("This link is not valid or was already used.", platform)
    if pending.expired(datetime.now(tz=UTC)):
        return _problem("This link has expired (links last 10 minutes).", platform)
    return None


def _problem(text: str, platform: str, status: int = 400) -> HTMLResponse:
    hint = f" Ask the bot for a new link (say <code>link {html.escape(platform)}</code>)."
    return _page("Linking did not work", html.escape(text) + hint, status)


def build_oauth_router(
    *,
    pool: Callable[[], asyncpg.Pool],
    cipher: TokenCipher,
    platforms: Mapping[str, SocialPlatform],
    notifiers: Notifiers,
    public_base_url: str,
) -> APIRouter:
    """The router; `pool` is a getter because the pool opens after the app is built."""
    router = APIRouter()
    base = public_base_url.rstrip("/")

    def redirect_uri(platform: str) -> str:
        return f"{base}/oauth/{platform}/callback"

    @router.get("/oauth/{platform}/start", response_model=None)
    async def start(platform: str, s: str | None = None) -> Response:
        impl = platforms.get(platform)
        if impl is None:
            return _page("Unknown platform", "That platform is not set up here.", 404)
        if not s:
            return _problem("This link is incomplete.", platform)
        pending = await oauth_states.peek(pool(), state=s, platform=platform)
        if (refused := _unusable(pending, platform)) is not None:
            return refused
        assert pending is not None
        try:
            verifier = pending.verifier(cipher)
        except DecryptionError:
            return _problem("This link's security check is missing or damaged.", platform)
        url = impl.authorization_url(
            state=s, code_verifier=verifier, redirect_uri=redirect_uri(platform)
        )
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})

    @router.get("/oauth/{platform}/callback", response_model=None)
    async def callback(
        platform: str,
        state: str | None = None,
        code: str | None = None,
        error: str | None = None,
    ) -> Response:
        impl = platforms.get(platform)
        if impl is None:
            return _page("Unknown platform", "That platform is not set up here.", 404)
        if not state:
            return _problem("The answer from the platform has no state.", platform)
        pending = await oauth_states.consume(pool(), state=state, platform=platform)
        if (refused := _unusable(pending, platform)) is not None:
            return refused
        assert pending is not None
        if error or not code:
            reason = "You declined access" if error == "access_denied" else "No code came back"
            return _problem(f"{reason}; nothing was linked.", platform)
        try:
            verifier = pending.verifier(cipher)
        except DecryptionError:
            return _problem("This link's security check is missing or damaged.", platform)
        try:
            tokens = await impl.exchange_code(
                code=code, code_verifier=verifier, redirect_uri=redirect_uri(platform)
            )
            profile = await impl.profile(tokens)
        except IntegrationError as exc:
            log.warning("oauth callback failed", extra={"error": type(exc).__name__})
            return _problem(exc.user_message, platform, 400 if exc.status == 400 else 502)
        except Exception:
            # e.g. an answer that is not JSON: the person gets a page, the log the details.
            log.exception("oauth callback failed unexpectedly", extra={"platform": platform})
            return _problem(
                "The platform's answer could not be read; nothing was linked.", platform, 502
            )
        async with pool().acquire() as conn:
            account = await accounts.upsert_linked(
                conn,
                cipher=cipher,
                workspace_id=pending.workspace_id,
                owner_id=pending.chat_user_id,
                platform=platform,
                external_id=profile.external_id,
                handle=profile.handle,
                scopes=list(tokens.scopes),
                token=tokens.to_dict(),
                expires_at=tokens.expires_at,
            )
            await audit.record(
                conn,
                action="link",
                outcome="ok",
                workspace_id=pending.workspace_id,
                chat_user_id=pending.chat_user_id,
                target=account.ref,
                detail={"platform": platform},
            )
        who = pending.user_display_name or pending.user_external_id
        await notifiers.notify(
            pending.frontend,
            pending.reply_to,
            f"Linked {impl.display_name} {profile.display_name} ({profile.handle}) "
            f"as {account.ref}.",
        )
        return _page(
            f"{impl.display_name} linked",
            f"Linked {html.escape(impl.display_name)} <b>{html.escape(profile.display_name)}</b>"
            f" for <b>{html.escape(who)}</b>. You can close this tab and go back to the chat.",
            200,
        )

    return router
