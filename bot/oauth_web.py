"""OAuth link pages: the start page, the chat sign-in's return, and the platform's callback.

`GET /oauth/{platform}/start?s=…` names the chat user and workspace the link is
for and offers "Continue". `POST /oauth/{platform}/start` binds the link to this
browser (an HttpOnly cookie) and sends it to the chat's sign-in where one is
configured (`/oauth/identity/{frontend}/callback` checks who signed in), else
straight to the platform's consent page. `GET /oauth/{platform}/callback`
completes the link only for that browser and, where a sign-in applies, only once
the requester signed in (`agent.ops.linking`). Without a sign-in, the page shows
the code the requester types in chat; an account another member owns waits for
that owner's approval. Anything wrong is a readable 400 page and links nothing.

The cookie's name carries a hash of the state (several links can be open in one
browser); its value is a random secret whose hash the state's row keeps. Every
page is `no-store`, under a CSP that allows no script, style, frame or plugin.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent.actions.accounts import linked_text
from agent.ops.base import now_utc
from agent.ops.linking import Binding, BindingMode, LinkedResult, Linking
from agent.ports import AwaitingCode, AwaitingOwner, LinkRefused
from bot.notify import Notifiers
from bot.signin import SignIn, SignInFailed
from integrations.errors import IntegrationError
from integrations.registry import Platforms
from storage.oauth_states import OAuthState

log = logging.getLogger(__name__)

COOKIE_PATH = "/oauth/"
_FORM_MAX_BYTES = 4096
# Forms post to this origin; the chain after "Continue" goes on to https sign-in and
# consent pages (Chrome applies form-action to the redirects a form submission follows).
_CSP = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' https:"
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": _CSP,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_PLACES = {"slack": "Slack workspace", "discord": "Discord server", "local": "local shell"}
_CHATS = {"slack": "Slack", "discord": "Discord", "local": "the shell"}


def cookie_name(state: str) -> str:
    """The browser-binding cookie of one link: named by a hash of its state, never the state."""
    return "link_" + hashlib.sha256(state.encode()).hexdigest()[:24]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def form_state(body: bytes) -> str | None:
    """The `s` field of an urlencoded form body (None if absent or repeated)."""
    values = parse_qs(body.decode("utf-8", errors="replace")).get("s", [])
    return values[0] if len(values) == 1 and values[0] else None


def requester(pending: OAuthState) -> str:
    """'Ada (U123)': the chat user a link is for, as the start and result pages name them."""
    name = pending.user_display_name
    ident = pending.user_external_id
    return f"{name} ({ident})" if name and name != ident else ident


def workspace(pending: OAuthState) -> str:
    place = _PLACES.get(pending.frontend, pending.frontend)
    name = pending.workspace_name or pending.workspace_external_id
    return place if pending.frontend == "local" else f"{place} {name}"


def _page(title: str, body: str, status: int) -> HTMLResponse:
    """A page: `body` is markup whose every piece of outside text is already escaped."""
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


def _problem(text: str, platform: str | None, status: int = 400) -> HTMLResponse:
    ask = f" (say <code>link {html.escape(platform)}</code>)" if platform else ""
    return _page(
        "Linking did not work",
        f"<p>{html.escape(text)} Ask the bot for a new link{ask}.</p>",
        status,
    )


def start_page(
    platform_name: str, pending: OAuthState, state: str, mode: BindingMode, label: str
) -> str:
    """The start page's body: who the link is for, what happens next, and "Continue"."""
    who, chat = html.escape(requester(pending)), _CHATS.get(pending.frontend, "the chat")
    steps = {
        "signin": f"<p>Next you sign in with {html.escape(label.removeprefix('Sign in with '))}"
        f" as <b>{who}</b>: only that person can finish this link. Then "
        f"{html.escape(platform_name)} asks which account to connect.</p>",
        "code": f"<p>This bot cannot check who you are in {chat} (no sign-in is set up), so "
        f"after you connect the account this page shows a code, and the account stays "
        f"unusable until <b>{who}</b> types <code>link confirm &lt;code&gt;</code> in "
        f"{chat}.</p>",
        "local": f"<p>This link was made in the local shell on this machine. Next, "
        f"{html.escape(platform_name)} asks which account to connect.</p>",
    }
    return (
        f"<p>This link connects a {html.escape(platform_name)} account for <b>{who}</b> "
        f"in the {html.escape(workspace(pending))}.</p>{steps[mode]}"
        f"<p>If you are not {who}, close this page.</p>"
        "<form method='post' action='start'>"
        f"<input type='hidden' name='s' value='{html.escape(state, quote=True)}'>"
        "<button type='submit'>Continue</button></form>"
    )


def result_page(done: LinkedResult, platform_name: str) -> tuple[str, str]:
    """The callback page's title and body for each outcome (the code is shown only here)."""
    pending, outcome = done.pending, done.outcome
    who, chat = html.escape(requester(pending)), _CHATS.get(pending.frontend, "the chat")
    display = html.escape(platform_name)
    if isinstance(outcome, AwaitingCode):
        minutes = max(outcome.expires_in_seconds // 60, 1)
        code = html.escape(outcome.code)
        return (
            "One more step",
            f"<p>{display} <b>{html.escape(outcome.title)}</b> is connected but not usable "
            f"yet. Your confirmation code is</p><p><code>{code}</code></p>"
            f"<p><b>{who}</b> must type <code>link confirm {code}</code> in {chat} within "
            f"{minutes} minutes. If you are not {who}, do not pass this code on: without it "
            "nothing is linked.</p>",
        )
    if isinstance(outcome, AwaitingOwner):
        return (
            "Waiting for approval",
            f"<p>{display} <b>{html.escape(outcome.title)}</b> is already linked to another "
            f"member of this {html.escape(_PLACES.get(pending.frontend, 'workspace'))}. It "
            f"stays theirs until they approve handing it to <b>{who}</b>; the bot asks them "
            f"in {chat}. Nothing has changed yet. You can close this tab.</p>",
        )
    return (
        f"{platform_name} linked",
        f"<p>Linked {display} <b>{html.escape(outcome.title)}</b> for <b>{who}</b>. "
        "You can close this tab and go back to the chat.</p>",
    )


def build_oauth_router(
    *,
    linking: Callable[[], Linking],
    platforms: Platforms,
    notifiers: Notifiers,
    public_base_url: str,
    signins: Mapping[str, SignIn] | None = None,
) -> APIRouter:
    """The router; `linking` is a getter because it needs the pool, opened after the app.

    `signins` maps a front-end to its configured chat sign-in; it must agree with
    the linking config's `signin_frontends` (bot.assembly builds both from Settings).
    """
    router = APIRouter()
    signins = dict(signins or {})
    own_origin = origin(public_base_url)
    secure = public_base_url.startswith("https://")

    @router.get("/oauth/{platform}/start", response_model=None)
    async def start(platform: str, s: str | None = None) -> Response:
        if platform not in platforms.configured():
            return _page("Unknown platform", "<p>That platform is not set up here.</p>", 404)
        if not s:
            return _problem("This link is incomplete.", platform)
        ops = linking()
        try:
            pending = await ops.describe(platform, s)
        except LinkRefused as exc:
            return _problem(str(exc), platform)
        mode = ops.binding_mode(pending.frontend)
        label = signins[pending.frontend].label if pending.frontend in signins else ""
        title = f"Link a {platforms.display(platform)} account"
        return _page(title, start_page(platforms.display(platform), pending, s, mode, label), 200)

    @router.post("/oauth/{platform}/start", response_model=None)
    async def start_continue(platform: str, request: Request) -> Response:
        if platform not in platforms.configured():
            return _page("Unknown platform", "<p>That platform is not set up here.</p>", 404)
        sent_from = request.headers.get("origin")
        if sent_from is not None and sent_from != own_origin:
            return _problem("This form was sent from another site.", platform, 403)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _FORM_MAX_BYTES:
                return _problem("This request is too large.", platform, 413)
        state = form_state(body)
        if state is None:
            return _problem("This link is incomplete.", platform)
        try:
            binding = await linking().bind_browser(platform, state)
            target = await _next_step(platform, state, binding)
        except LinkRefused as exc:
            return _problem(str(exc), platform)
        response = _redirect(target)
        remaining = (binding.pending.expires_at - now_utc()).total_seconds()
        response.set_cookie(
            cookie_name(state),
            binding.browser_secret,
            max_age=max(int(remaining), 1),
            path=COOKIE_PATH,
            secure=secure,
            httponly=True,
            samesite="lax",
        )
        return response

    async def _next_step(platform: str, state: str, binding: Binding) -> str:
        """Where "Continue" leads: the chat's sign-in, or the platform's consent page."""
        if binding.mode != "signin":
            return await linking().consent_url(platform, state)
        signin = signins.get(binding.pending.frontend)
        if signin is None:
            log.error(
                "sign-in expected but not built", extra={"frontend": binding.pending.frontend}
            )
            raise LinkRefused("Signing in is not available on this server right now.")
        return signin.authorize_url(
            state=state,
            nonce=binding.nonce,
            workspace_external_id=binding.pending.workspace_external_id,
        )

    @router.get("/oauth/identity/{frontend}/callback", response_model=None)
    async def signed_in(
        frontend: str,
        request: Request,
        state: str | None = None,
        code: str | None = None,
        error: str | None = None,
    ) -> Response:
        signin = signins.get(frontend)
        if signin is None:
            return _page("Unknown sign-in", "<p>That sign-in is not set up here.</p>", 404)
        if not state:
            return _problem("The answer from the sign-in has no state.", None)
        browser = request.cookies.get(cookie_name(state))
        if browser is None:
            return _problem(
                "This page was opened in a different browser from the one that started the "
                "link, so nothing was linked.",
                None,
            )
        if error or not code:
            return _problem("You did not sign in, so nothing was linked.", None)
        try:
            who = await signin.identify(code)
            target = await linking().verify_signin(
                state=state,
                browser_secret=browser,
                nonce=who.nonce,
                frontend=frontend,
                user_external_id=who.user_id,
                workspace_external_id=who.workspace_id,
            )
        except (SignInFailed, LinkRefused) as exc:
            return _problem(str(exc), None)
        return _redirect(target)

    @router.get("/oauth/{platform}/callback", response_model=None)
    async def callback(
        platform: str,
        request: Request,
        state: str | None = None,
        code: str | None = None,
        error: str | None = None,
    ) -> Response:
        if platform not in platforms.configured():
            return _page("Unknown platform", "<p>That platform is not set up here.</p>", 404)
        if not state:
            return _problem("The answer from the platform has no state.", platform)
        try:
            done = await linking().complete_link(
                platform,
                state=state,
                code=code,
                error=error,
                browser_secret=request.cookies.get(cookie_name(state)),
            )
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
        await _tell(done, platform)
        title, body = result_page(done, platforms.display(platform))
        response = _page(title, body, 200)
        response.delete_cookie(cookie_name(state), path=COOKIE_PATH, secure=secure, httponly=True)
        return response

    async def _tell(done: LinkedResult, platform: str) -> None:
        """The chat notes: the requester always; an account's current owner when asked."""
        pending, outcome = done.pending, done.outcome
        if isinstance(outcome, AwaitingCode):
            minutes = max(outcome.expires_in_seconds // 60, 1)
            note = (
                f"A {done.display_name} account ({outcome.title}) was connected with your link. "
                "If that was you, type `link confirm <code>` with the code the page showed "
                f"(within {minutes} minutes). If not, ignore this: nothing is linked."
            )
        else:
            note = linked_text(platforms, outcome)
        await notifiers.notify(pending.frontend, pending.reply_to, note)
        if isinstance(outcome, AwaitingOwner):
            caps = platforms.capabilities(platform)
            account = outcome.account
            await notifiers.notify(
                outcome.owner.identity.frontend,
                outcome.owner.reply_to,
                f"{outcome.requester.mention} asked to take over {caps.display_name} "
                f"{caps.handle(account.handle)} ({account.ref}), which is linked to you. "
                "Nothing has changed: I'll ask for your approval the next time you talk to me.",
            )

    return router
