"""OAuth link states: one row per pending link, stored hashed, consumed exactly once.

The raw state travels only in the requester's private link and in the platform's
redirect; the table keeps its SHA-256, so a database read never yields a usable
state. The PKCE verifier is encrypted and bound to its row. The browser that
continued from the start page is recorded as the SHA-256 of its cookie secret
(`bind`), and a matching chat sign-in as `verified_at` (`mark_verified`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.crypto import Location, TokenCipher
from storage.types import Executor


def state_hash(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


def secret_hash(secret: str) -> bytes:
    """SHA-256 of a browser cookie secret or a sign-in nonce (what the table keeps)."""
    return hashlib.sha256(secret.encode()).digest()


def verifier_location(hashed: bytes) -> Location:
    return Location(table="oauth_states", row=hashed.hex(), column="code_verifier")


@dataclass(frozen=True, slots=True)
class OAuthState:
    """A pending link as read back (verifier still encrypted: decrypt with `verifier`)."""

    state_hash: bytes
    platform: str
    workspace_id: int
    chat_user_id: int
    code_verifier: bytes
    reply_to: dict[str, Any]
    expires_at: datetime
    frontend: str
    user_external_id: str
    user_display_name: str | None
    workspace_external_id: str
    workspace_name: str | None
    browser_hash: bytes | None
    verified_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def verifier(self, cipher: TokenCipher) -> str:
        """The PKCE verifier; raises storage.crypto.DecryptionError if tampered."""
        return cipher.decrypt_str(self.code_verifier, verifier_location(self.state_hash))


async def create(
    db: Executor,
    *,
    cipher: TokenCipher,
    state: str,
    platform: str,
    workspace_id: int,
    chat_user_id: int,
    code_verifier: str,
    reply_to: dict[str, Any],
    ttl: timedelta,
) -> datetime:
    """Store a pending link; returns when it expires."""
    hashed = state_hash(state)
    envelope = cipher.encrypt_str(code_verifier, verifier_location(hashed))
    expires: datetime = await db.fetchval(
        """
        INSERT INTO oauth_states
            (state_hash, platform, workspace_id, chat_user_id, code_verifier,
             code_verifier_kid, reply_to, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, now() + $8::interval)
        RETURNING expires_at
        """,
        hashed,
        platform,
        workspace_id,
        chat_user_id,
        envelope,
        cipher.primary_kid,
        json.dumps(reply_to),
        ttl,
    )
    return expires


_JOINED = """
    SELECT s.state_hash, s.platform, s.workspace_id, s.chat_user_id, s.code_verifier,
           s.reply_to, s.expires_at, s.browser_hash, s.verified_at, w.frontend,
           w.external_id AS workspace_external_id, w.name AS workspace_name,
           u.external_id AS user_external_id, u.display_name AS user_display_name
      FROM s
      JOIN workspaces w ON w.id = s.workspace_id
      JOIN chat_users u ON u.id = s.chat_user_id
"""


def _from_row(row: Any) -> OAuthState:
    reply = row["reply_to"]
    return OAuthState(
        state_hash=bytes(row["state_hash"]),
        platform=row["platform"],
        workspace_id=row["workspace_id"],
        chat_user_id=row["chat_user_id"],
        code_verifier=bytes(row["code_verifier"]),
        reply_to=json.loads(reply) if isinstance(reply, str) else dict(reply),
        expires_at=row["expires_at"],
        frontend=row["frontend"],
        user_external_id=row["user_external_id"],
        user_display_name=row["user_display_name"],
        workspace_external_id=row["workspace_external_id"],
        workspace_name=row["workspace_name"],
        browser_hash=bytes(row["browser_hash"]) if row["browser_hash"] is not None else None,
        verified_at=row["verified_at"],
    )


async def peek(db: Executor, *, state: str, platform: str | None) -> OAuthState | None:
    """Read a pending link without consuming it (the start page; a sign-in's callback,
    which does not know the platform: `platform=None`)."""
    row = await db.fetchrow(
        "WITH s AS (SELECT * FROM oauth_states WHERE state_hash = $1"
        " AND ($2::text IS NULL OR platform = $2))" + _JOINED,
        state_hash(state),
        platform,
    )
    return _from_row(row) if row else None


async def bind(
    db: Executor, *, state: str, platform: str, browser_hash: bytes, nonce_hash: bytes
) -> OAuthState | None:
    """Bind a live pending link to the browser that continued from the start page.

    A later bind (another browser with the same link) replaces the binding and
    clears any sign-in made for the previous one: a sign-in counts only for the
    browser that holds the cookie.
    """
    row = await db.fetchrow(
        "WITH s AS (UPDATE oauth_states SET browser_hash = $3, nonce_hash = $4,"
        " verified_at = NULL WHERE state_hash = $1 AND platform = $2 AND expires_at > now()"
        " RETURNING *)" + _JOINED,
        state_hash(state),
        platform,
        browser_hash,
        nonce_hash,
    )
    return _from_row(row) if row else None


async def mark_verified(
    db: Executor, *, state: str, browser_hash: bytes, nonce_hash: bytes | None
) -> bool:
    """Record that the chat user signed in, once, from the bound browser.

    `nonce_hash` is checked when the sign-in carries a nonce (Slack's id_token);
    it is cleared so the same answer cannot verify twice.
    """
    result: str = await db.execute(
        """
        UPDATE oauth_states SET verified_at = now(), nonce_hash = NULL
         WHERE state_hash = $1 AND browser_hash = $2 AND verified_at IS NULL
           AND nonce_hash IS NOT NULL AND ($3::bytea IS NULL OR nonce_hash = $3)
           AND expires_at > now()
        """,
        state_hash(state),
        browser_hash,
        nonce_hash,
    )
    return result.endswith(" 1")


async def consume(db: Executor, *, state: str, platform: str) -> OAuthState | None:
    """Delete and return a pending link in one statement: a second use finds nothing."""
    row = await db.fetchrow(
        "WITH s AS (DELETE FROM oauth_states WHERE state_hash = $1 AND platform = $2"
        " RETURNING *)" + _JOINED,
        state_hash(state),
        platform,
    )
    return _from_row(row) if row else None


async def purge_expired(db: Executor) -> int:
    result: str = await db.execute("DELETE FROM oauth_states WHERE expires_at < now()")
    return int(result.split()[-1])
