"""Linking: the one-time OAuth link, completing it from the callback, and unlinking."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agent.ops.base import OpsBase, now_utc
from integrations.base import AccountProfile, TokenSet
from integrations.errors import IntegrationError
from storage import accounts, audit, oauth_states
from storage.accounts import LinkedAccount, TokenUnavailable
from storage.crypto import DecryptionError
from storage.identity import Identity
from storage.oauth_states import OAuthState

log = logging.getLogger(__name__)


class LinkRefused(Exception):
    """The link cannot go on (unknown, used or expired state; tampered verifier; declined).

    `str(err)` is a sentence for the person in the browser.
    """


@dataclass(frozen=True, slots=True)
class LinkedResult:
    """A finished link, for the callback page and the note to the chat user."""

    pending: OAuthState
    account: LinkedAccount
    profile: AccountProfile
    display_name: str


class Linking(OpsBase):
    """Start, complete and undo account links (PlatformOps' linking part)."""

    def redirect_uri(self, platform: str) -> str:
        return f"{self._config.public_base_url.rstrip('/')}/oauth/{platform}/callback"

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
            raise LinkRefused("This link is not valid or was already used.")
        if pending.expired(now_utc()):
            raise LinkRefused("This link has expired (links last 10 minutes).")
        return pending

    def _verifier(self, pending: OAuthState) -> str:
        try:
            return pending.verifier(self._cipher)
        except DecryptionError:
            raise LinkRefused("This link's security check is missing or damaged.") from None

    async def consent_url(self, platform: str, state: str) -> str:
        """Where `/oauth/{platform}/start` sends the browser: the platform's consent page."""
        impl = self._platform(platform)
        pending = self._usable(await oauth_states.peek(self._pool, state=state, platform=platform))
        return impl.authorization_url(
            state=state,
            code_verifier=self._verifier(pending),
            redirect_uri=self.redirect_uri(platform),
        )

    async def complete_link(
        self, platform: str, *, state: str, code: str | None, error: str | None
    ) -> LinkedResult:
        """The callback: consume the state once, exchange the code, store the account.

        LinkRefused for the person's own mistakes; IntegrationError when the platform
        refuses or cannot be reached.
        """
        impl = self._platform(platform)
        pending = self._usable(
            await oauth_states.consume(self._pool, state=state, platform=platform)
        )
        if error or not code:
            reason = "You declined access" if error == "access_denied" else "No code came back"
            raise LinkRefused(f"{reason}; nothing was linked.")
        verifier = self._verifier(pending)
        tokens = await impl.exchange_code(
            code=code, code_verifier=verifier, redirect_uri=self.redirect_uri(platform)
        )
        profile = await impl.profile(tokens)
        async with self._pool.acquire() as conn:
            account = await accounts.upsert_linked(
                conn,
                cipher=self._cipher,
                workspace_id=pending.workspace_id,
                owner_id=pending.chat_user_id,
                platform=platform,
                prefix=impl.capabilities.account_prefix,
                external_id=profile.external_id,
                handle=profile.handle.lstrip("@"),
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
        return LinkedResult(pending, account, profile, impl.capabilities.display_name)

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
