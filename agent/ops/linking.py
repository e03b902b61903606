"""Linking: one-time OAuth links bound to the person who asked for them, and unlinking.

The flow (pages in `bot/oauth_web.py`):

1. `start_link`: a private URL with a fresh state, for the chat user who asked.
2. The start page names that user and workspace; its "Continue" (`bind_browser`)
   binds the state to this browser: a random secret goes into a cookie, its hash
   into the row.
3. Where a chat sign-in is configured for the link's front-end (Sign in with
   Slack, Discord OAuth2), the browser signs in there next and `verify_signin`
   compares who signed in with who asked; only a match marks the state verified.
   Links made in the local shell need none (same machine).
4. `complete_link` (the platform's callback) consumes the state once and goes on
   only for the bound browser and, where a sign-in applies, a verified state.
   Where none is configured, the account is stored pending (`storage.pending_links`)
   with a short code shown in that browser, and the requester activates it by
   typing `link confirm <code>` in chat (`confirm_link`).
5. An account already linked to another member never moves silently: the link
   becomes a request the current owner approves (`approve_transfer`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import asyncpg

from agent.ops.base import OpsBase, now_utc
from agent.ports import (
    TRANSFER_ACTION,
    AwaitingCode,
    AwaitingOwner,
    Linked,
    LinkOutcome,
    LinkRefused,
    Transferred,
)
from integrations.base import AccountProfile, TokenSet
from integrations.errors import IntegrationError
from storage import accounts, audit, identity, oauth_states, pending_links
from storage import approvals as approval_store
from storage.accounts import LinkedAccount, OwnedByAnother, TokenUnavailable
from storage.crypto import DecryptionError
from storage.identity import Identity
from storage.oauth_states import OAuthState, secret_hash
from storage.pending_links import NewPendingLink

log = logging.getLogger(__name__)

BindingMode = Literal["local", "signin", "code"]

_INVALID = "This link is not valid or was already used."
_OTHER_BROWSER = (
    "This page was opened in a different browser from the one that started the link, "
    "so nothing was linked. Open the link from the chat again and finish in one browser."
)
_CONFIRM_REFUSALS = {
    "none_waiting": "You have no link waiting for a code. If it expired, link the account again.",
    "wrong_code": (
        "That code is not right. Type the code shown in the browser where you connected "
        "the account: `link confirm <code>`."
    ),
    "too_many": (
        "That code is not right, and too many were: the waiting link was cancelled. "
        "Link the account again."
    ),
    "damaged": "That link's stored data is damaged; link the account again.",
}


def binding_mode(frontend: str, signin_frontends: Collection[str]) -> BindingMode:
    """How a link asked for on `frontend` is tied to the person who asked.

    `local`: the shell, on this machine, needs nothing more. `signin`: the chat's
    sign-in is configured and must name the requester. `code`: it is not, so the
    account waits for a code the requester types in chat.
    """
    if frontend == "local":
        return "local"
    return "signin" if frontend in signin_frontends else "code"


def signin_matches(
    pending: OAuthState,
    *,
    frontend: str,
    user_external_id: str,
    workspace_external_id: str | None,
) -> bool:
    """The person who signed in is the chat user the link is for.

    Slack ids are per workspace, so its sign-in names the workspace too and both
    must match; Discord user ids are global (`workspace_external_id=None`).
    """
    return (
        frontend == pending.frontend
        and user_external_id == pending.user_external_id
        and (
            workspace_external_id is None or workspace_external_id == pending.workspace_external_id
        )
    )


def same_browser(pending: OAuthState, browser_secret: str | None) -> bool:
    """The request carries the cookie secret of the browser the link was bound to."""
    return (
        browser_secret is not None
        and pending.browser_hash is not None
        and hmac.compare_digest(pending.browser_hash, secret_hash(browser_secret))
    )


@dataclass(frozen=True, slots=True)
class Binding:
    """A state bound to one browser: the cookie secret and the sign-in nonce (never logged)."""

    pending: OAuthState
    browser_secret: str
    nonce: str
    mode: BindingMode


@dataclass(frozen=True, slots=True)
class LinkedResult:
    """A finished OAuth callback, for its page and the notes to the people concerned."""

    pending: OAuthState
    outcome: LinkOutcome
    display_name: str


class Linking(OpsBase):
    """Start, bind, complete, confirm and undo account links (PlatformOps' linking part)."""

    def redirect_uri(self, platform: str) -> str:
        return f"{self._config.public_base_url.rstrip('/')}/oauth/{platform}/callback"

    def binding_mode(self, frontend: str) -> BindingMode:
        return binding_mode(frontend, self._config.signin_frontends)

    async def start_link(
        self, identity: Identity, platform: str, *, reply_to: dict[str, Any]
    ) -> str:
        self._platform(platform)
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 chars: within PKCE's 43..128
        await oauth_states.create(
            self._pool,
            cipher=self._cipher,
            state=state,
            platform=platform,
            workspace_id=identity.workspace_id,
            chat_user_id=identity.chat_user_id,
            code_verifier=verifier,
            reply_to=reply_to,
            ttl=timedelta(seconds=self._config.oauth_state_ttl_seconds),
        )
        base = self._config.public_base_url.rstrip("/")
        return f"{base}/oauth/{platform}/start?s={state}"

    @staticmethod
    def _usable(pending: OAuthState | None) -> OAuthState:
        if pending is None:
            raise LinkRefused(_INVALID)
        if pending.expired(now_utc()):
            raise LinkRefused("This link has expired (links last 10 minutes).")
        return pending

    def _verifier(self, pending: OAuthState) -> str:
        try:
            return pending.verifier(self._cipher)
        except DecryptionError:
            raise LinkRefused("This link's security check is missing or damaged.") from None

    async def describe(self, platform: str, state: str) -> OAuthState:
        """The pending link a start page is about; LinkRefused if it cannot be used."""
        self._platform(platform)
        pending = self._usable(await oauth_states.peek(self._pool, state=state, platform=platform))
        self._verifier(pending)
        return pending

    async def bind_browser(self, platform: str, state: str) -> Binding:
        """ "Continue" on the start page: bind the link to this browser (any earlier one loses it)."""
        self._platform(platform)
        browser, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
        bound = await oauth_states.bind(
            self._pool,
            state=state,
            platform=platform,
            browser_hash=secret_hash(browser),
            nonce_hash=secret_hash(nonce),
        )
        if bound is None:
            self._usable(await oauth_states.peek(self._pool, state=state, platform=platform))
            raise LinkRefused(_INVALID)
        self._verifier(bound)
        return Binding(bound, browser, nonce, self.binding_mode(bound.frontend))

    async def verify_signin(
        self,
        *,
        state: str,
        browser_secret: str | None,
        nonce: str | None,
        frontend: str,
        user_external_id: str,
        workspace_external_id: str | None,
    ) -> str:
        """After a chat sign-in: verify the link if its requester signed in; the consent URL.

        Someone else signing in cancels the link (it was opened by the wrong person).
        `nonce` is the one the sign-in echoed (Slack's id_token), checked against the row.
        """
        pending = self._usable(await oauth_states.peek(self._pool, state=state, platform=None))
        if not same_browser(pending, browser_secret):
            raise LinkRefused(_OTHER_BROWSER)
        assert browser_secret is not None
        if not signin_matches(
            pending,
            frontend=frontend,
            user_external_id=user_external_id,
            workspace_external_id=workspace_external_id,
        ):
            await oauth_states.consume(self._pool, state=state, platform=pending.platform)
            await self._audit(pending, "refused:other_person")
            raise LinkRefused(
                "You signed in as someone other than the person this link is for, so the "
                "link was cancelled and nothing was linked. Only the person who asked for "
                "it can use it; to link your own account, ask the bot from your own chat account."
            )
        verified = await oauth_states.mark_verified(
            self._pool,
            state=state,
            browser_hash=secret_hash(browser_secret),
            nonce_hash=secret_hash(nonce) if nonce is not None else None,
        )
        if not verified:
            raise LinkRefused("This sign-in does not belong to this link or was already used.")
        return await self.consent_url(pending.platform, state)

    async def consent_url(self, platform: str, state: str) -> str:
        """The platform's consent page for a pending link (after binding, and any sign-in)."""
        impl = self._platform(platform)
        pending = self._usable(await oauth_states.peek(self._pool, state=state, platform=platform))
        return impl.authorization_url(
            state=state,
            code_verifier=self._verifier(pending),
            redirect_uri=self.redirect_uri(platform),
        )

    async def complete_link(
        self,
        platform: str,
        *,
        state: str,
        code: str | None,
        error: str | None,
        browser_secret: str | None,
    ) -> LinkedResult:
        """The callback: consume the state once, check browser and sign-in, exchange, store.

        LinkRefused for anything the person can fix (nothing is linked);
        IntegrationError when the platform refuses or cannot be reached.
        """
        impl = self._platform(platform)
        pending = self._usable(
            await oauth_states.consume(self._pool, state=state, platform=platform)
        )
        if not same_browser(pending, browser_secret):
            await self._audit(pending, "refused:other_browser")
            raise LinkRefused(_OTHER_BROWSER)
        mode = self.binding_mode(pending.frontend)
        if mode == "signin" and pending.verified_at is None:
            await self._audit(pending, "refused:not_signed_in")
            raise LinkRefused(
                "The sign-in that proves who you are in the chat did not happen for this "
                "link, so nothing was linked."
            )
        if error or not code:
            reason = "You declined access" if error == "access_denied" else "No code came back"
            raise LinkRefused(f"{reason}; nothing was linked.")
        tokens = await impl.exchange_code(
            code=code,
            code_verifier=self._verifier(pending),
            redirect_uri=self.redirect_uri(platform),
        )
        profile = await impl.profile(tokens)
        new = _new_pending(pending, platform, profile, tokens)
        outcome: LinkOutcome
        if pending.verified_at is not None or mode == "local":
            async with self._pool.acquire() as conn, conn.transaction():
                outcome = await self._activate(conn, new)
        else:
            code_text = pending_links.new_code()
            ttl = self._config.link_code_ttl_seconds
            await pending_links.create(
                self._pool,
                cipher=self._cipher,
                link=new,
                ttl_seconds=ttl,
                code_hash=pending_links.code_digest(self._cipher, code_text),
            )
            await self._audit(pending, "pending:code")
            outcome = AwaitingCode(code_text, profile.display_name, ttl)
        return LinkedResult(pending, outcome, impl.capabilities.display_name)

    async def _activate(
        self, conn: asyncpg.pool.PoolConnectionProxy, new: NewPendingLink
    ) -> Linked | AwaitingOwner:
        """Link for the requester, or, if another member owns it, ask that owner (one transaction)."""
        try:
            account = await accounts.upsert_linked(
                conn,
                cipher=self._cipher,
                workspace_id=new.workspace_id,
                owner_id=new.requester_id,
                platform=new.platform,
                prefix=self._platforms.capabilities(new.platform).account_prefix,
                external_id=new.external_id,
                handle=new.handle,
                scopes=new.scopes,
                token=new.token,
                expires_at=new.token_expires_at,
            )
        except OwnedByAnother as taken:
            return await self._ask_owner(conn, new, taken.account)
        await audit.record(
            conn,
            action="link",
            outcome="ok",
            workspace_id=new.workspace_id,
            chat_user_id=new.requester_id,
            target=account.ref,
            detail={"platform": new.platform},
        )
        return Linked(account, new.display_name)

    async def _ask_owner(
        self, conn: asyncpg.pool.PoolConnectionProxy, new: NewPendingLink, current: LinkedAccount
    ) -> AwaitingOwner:
        owner = await identity.member(conn, current.owner_id)
        requester = await identity.member(conn, new.requester_id)
        assert owner is not None and requester is not None  # both rows back these ids
        caps = self._platforms.capabilities(new.platform)
        ttl = self._config.link_request_ttl_seconds
        approval = await approval_store.create(
            conn,
            workspace_id=new.workspace_id,
            chat_user_id=current.owner_id,
            action=TRANSFER_ACTION,
            args={"account": current.ref, "requester": new.requester_id},
            summary=(
                f"Let {requester.mention} take over {caps.display_name} "
                f"{caps.handle(current.handle)} ({current.ref}), which is linked to you"
            ),
            ttl_seconds=ttl,
            shown=False,
        )
        await pending_links.create(
            conn,
            cipher=self._cipher,
            link=new,
            ttl_seconds=ttl + pending_links.OWNER_GRACE_SECONDS,
            approval_id=approval.id,
        )
        await audit.record(
            conn,
            action="link",
            outcome="pending:owner_approval",
            workspace_id=new.workspace_id,
            chat_user_id=new.requester_id,
            target=current.ref,
            detail={"platform": new.platform},
        )
        return AwaitingOwner(current, owner, requester, new.display_name)

    async def confirm_link(self, identity: Identity, text: str) -> Linked | AwaitingOwner:
        """`link confirm <code>`: activate the requester's pending link that the code names.

        Only the requester's own pending links are candidates, so another person's
        code matches nothing. Every miss counts against each of them; after
        MAX_CODE_ATTEMPTS misses a pending link is dropped.
        """
        code = pending_links.normalize_code(text)
        async with self._pool.acquire() as conn, conn.transaction():
            waiting = await pending_links.awaiting_code(
                conn, workspace_id=identity.workspace_id, requester_id=identity.chat_user_id
            )
            match = next(
                (
                    link
                    for link, digest in waiting
                    if code is not None and pending_links.code_matches(self._cipher, code, digest)
                ),
                None,
            )
            refusal: str
            if match is not None:
                await pending_links.delete(conn, match.id)
                try:
                    token = match.token_dict(self._cipher)
                except DecryptionError:
                    refusal = "damaged"
                else:
                    return await self._activate(conn, _from_pending(match, token))
            elif waiting:
                ids = [link.id for link, _ in waiting]
                dropped = await pending_links.record_failed_attempt(conn, ids)
                refusal = "too_many" if dropped else "wrong_code"
            else:
                refusal = "none_waiting"
        await audit.record(
            self._pool,
            action="link_confirm",
            outcome=f"refused:{refusal}",
            workspace_id=identity.workspace_id,
            chat_user_id=identity.chat_user_id,
        )
        raise LinkRefused(_CONFIRM_REFUSALS[refusal])

    async def approve_transfer(
        self, owner: Identity, *, approval_id: str, account_ref: str, requester_id: int
    ) -> Transferred:
        """The current owner approved: move the account to the requester, in one transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            link = await pending_links.take_for_approval(
                conn, approval_id=approval_id, workspace_id=owner.workspace_id
            )
            current = await accounts.get_by_ref(
                conn, workspace_id=owner.workspace_id, ref=account_ref, owner_id=owner.chat_user_id
            )
            if link is None or link.requester_id != requester_id:
                raise LinkRefused("That request is no longer waiting; nothing was changed.")
            if (
                current is None
                or current.platform != link.platform
                or current.external_id != link.external_id
            ):
                raise LinkRefused("That account is no longer linked to you; nothing was changed.")
            requester = await identity.member(conn, link.requester_id)
            try:
                token = link.token_dict(self._cipher)
            except DecryptionError:
                raise LinkRefused(
                    "The request's stored data is damaged; nothing was changed."
                ) from None
            moved = await accounts.transfer(
                conn,
                cipher=self._cipher,
                account_id=current.id,
                from_owner=owner.chat_user_id,
                to_owner=link.requester_id,
                handle=link.handle,
                scopes=list(link.scopes),
                token=token,
                expires_at=link.token_expires_at,
            )
            if moved is None or requester is None:
                raise LinkRefused("That account is no longer linked to you; nothing was changed.")
            await audit.record(
                conn,
                action="link_transfer",
                outcome="ok",
                workspace_id=owner.workspace_id,
                chat_user_id=owner.chat_user_id,
                target=moved.ref,
                detail={"platform": moved.platform, "to_chat_user": link.requester_id},
            )
        return Transferred(moved, requester, link.reply_to)

    async def _audit(self, pending: OAuthState, outcome: str) -> None:
        await audit.record(
            self._pool,
            action="link",
            outcome=outcome,
            workspace_id=pending.workspace_id,
            chat_user_id=pending.chat_user_id,
            detail={"platform": pending.platform},
        )

    async def unlink(self, identity: Identity, account_ref: str) -> str:
        account = await self._account(identity, account_ref)
        platform = self._platforms.get(account.platform)
        if platform is not None:
            try:
                raw = await accounts.load_token(self._pool, cipher=self._cipher, account=account)
                await platform.revoke(TokenSet.from_dict(raw))
            except (IntegrationError, TokenUnavailable) as exc:
                # Best effort: the link is removed here even if the platform could not be told.
                log.warning(
                    "revoke failed during unlink",
                    extra={"account": account.ref, "error": type(exc).__name__},
                )
        await accounts.delete(self._pool, workspace_id=identity.workspace_id, account_id=account.id)
        await audit.record(
            self._pool,
            action="unlink",
            outcome="ok",
            workspace_id=identity.workspace_id,
            chat_user_id=identity.chat_user_id,
            target=account.ref,
            detail={"platform": account.platform},
        )
        return account.handle


def _new_pending(
    pending: OAuthState, platform: str, profile: AccountProfile, tokens: TokenSet
) -> NewPendingLink:
    """What a finished consent yields, for the requester of `pending`."""
    return NewPendingLink(
        workspace_id=pending.workspace_id,
        requester_id=pending.chat_user_id,
        platform=platform,
        external_id=profile.external_id,
        handle=profile.handle.lstrip("@"),
        display_name=profile.display_name,
        scopes=list(tokens.scopes),
        token=tokens.to_dict(),
        token_expires_at=tokens.expires_at,
        reply_to=pending.reply_to,
    )


def _from_pending(link: pending_links.PendingLink, token: dict[str, Any]) -> NewPendingLink:
    """A stored pending link, back in the shape `_activate` takes."""
    return NewPendingLink(
        workspace_id=link.workspace_id,
        requester_id=link.requester_id,
        platform=link.platform,
        external_id=link.external_id,
        handle=link.handle,
        display_name=link.display_name,
        scopes=list(link.scopes),
        token=token,
        token_expires_at=link.token_expires_at,
        reply_to=link.reply_to,
    )
