"""OAuth link states: one row per pending link, stored hashed, consumed exactly once.

The raw state travels only in the requester's private link and in the platform's
redirect; the table keeps its SHA-256, so a database read never yields a usable
state. The PKCE verifier is encrypted and bound to its row.
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
           s.reply_to, s.expires_at, w.frontend, u.external_id AS user_external_id,
           u.display_name AS user_display_name
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
    )


async def peek(db: Executor, *, state: str, platform: str) -> OAuthState | None:
    """Read a pending link without consuming it (the /start redirect)."""
    row = await db.fetchrow(
        "WITH s AS (SELECT * FROM oauth_states WHERE state_hash = $1 AND platform = $2)" + _JOINED,
        state_hash(state),
        platform,
    )
    return _from_row(row) if row else None


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
