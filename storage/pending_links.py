"""Links that finished OAuth but are not usable yet (table `pending_links`).

A pending link waits for one of two things: the requester typing the confirmation
code shown in the browser (`code_hash`; where no chat sign-in can prove who
consented), or the approval of the account's current owner (`approval_id`, a
pending action bound to that owner). They live apart from `linked_accounts` on
purpose: every reader of linked accounts (accounts, metrics, uploads, digests,
token refresh) sees only usable ones, with no status filter to forget.

The token is encrypted and bound to its row, like `linked_accounts.token`; the code
is kept as an HMAC under a key derived from TOKEN_ENCRYPTION_KEYS, so a database
read yields neither a token nor a code.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Any

import asyncpg

from storage.crypto import Location, TokenCipher
from storage.types import Executor

# No 0/O or 1/I: the code is read off a screen and typed into a chat.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8  # 40 bits
MAX_CODE_ATTEMPTS = 5
_CODE_PURPOSE = "link-confirm-code/v1"

_COLUMNS = (
    "id, workspace_id, requester_id, platform, external_id, handle, display_name, scopes,"
    " token, token_expires_at, reply_to, approval_id, attempts, expires_at"
)
_LIVE_APPROVAL = (
    "EXISTS (SELECT 1 FROM pending_actions a WHERE a.id = pending_links.approval_id"
    " AND a.status = 'pending' AND a.expires_at > now())"
)
_ANSWERED_APPROVAL = (
    "EXISTS (SELECT 1 FROM pending_actions a WHERE a.id = pending_links.approval_id"
    " AND a.status IN ('rejected', 'done', 'failed'))"
)
# A link waiting for an owner outlives its approval by this much, so an approval
# claimed in its last second still finds the link when its executor runs.
OWNER_GRACE_SECONDS = 60


def new_code() -> str:
    """A fresh confirmation code (shown once, in the browser of the person who consented)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str | None:
    """What the person typed -> the code, ignoring case, spaces and dashes; None if malformed."""
    code = "".join(ch for ch in text.upper() if ch not in " -")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def code_digest(cipher: TokenCipher, code: str, kid: str | None = None) -> bytes:
    """HMAC-SHA256 of a code under the subkey of key `kid` (default: the primary key)."""
    _, key = cipher.derive_key(_CODE_PURPOSE, kid)
    return hmac.new(key, code.encode(), sha256).digest()


def code_matches(cipher: TokenCipher, code: str, stored: bytes) -> bool:
    """Constant-time check against every configured key (a rotation may sit in between)."""
    return any(
        hmac.compare_digest(code_digest(cipher, code, kid), stored) for kid in cipher.key_ids
    )


def token_location(link_id: int) -> Location:
    return Location(table="pending_links", row=str(link_id), column="token")


@dataclass(frozen=True, slots=True)
class PendingLink:
    """A pending link as read back (token still encrypted: decrypt with `token_dict`)."""

    id: int
    workspace_id: int
    requester_id: int
    platform: str
    external_id: str
    handle: str
    display_name: str
    scopes: tuple[str, ...]
    token: bytes
    token_expires_at: datetime | None
    reply_to: dict[str, Any]
    approval_id: str | None
    attempts: int
    expires_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> PendingLink:
        reply = row["reply_to"]
        return cls(
            id=row["id"],
            workspace_id=row["workspace_id"],
            requester_id=row["requester_id"],
            platform=row["platform"],
            external_id=row["external_id"],
            handle=row["handle"],
            display_name=row["display_name"],
            scopes=tuple(row["scopes"]),
            token=bytes(row["token"]),
            token_expires_at=row["token_expires_at"],
            reply_to=json.loads(reply) if isinstance(reply, str) else dict(reply),
            approval_id=str(row["approval_id"]) if row["approval_id"] is not None else None,
            attempts=row["attempts"],
            expires_at=row["expires_at"],
        )

    def token_dict(self, cipher: TokenCipher) -> dict[str, Any]:
        """The decrypted token; storage.crypto.DecryptionError if it was tampered with."""
        token: dict[str, Any] = json.loads(cipher.decrypt(self.token, token_location(self.id)))
        return token


@dataclass(frozen=True, slots=True)
class NewPendingLink:
    """What a finished OAuth flow hands over for a link that cannot be used yet."""

    workspace_id: int
    requester_id: int
    platform: str
    external_id: str
    handle: str
    display_name: str
    scopes: list[str]
    token: dict[str, Any]
    token_expires_at: datetime | None
    reply_to: dict[str, Any]


async def create(
    db: Executor,
    *,
    cipher: TokenCipher,
    link: NewPendingLink,
    ttl_seconds: int,
    code_hash: bytes | None = None,
    approval_id: str | None = None,
) -> PendingLink:
    """Store a pending link waiting for a code (`code_hash`) or an owner (`approval_id`)."""
    link_id: int = await db.fetchval(
        "SELECT nextval(pg_get_serial_sequence('pending_links', 'id'))"
    )
    envelope = cipher.encrypt(json.dumps(link.token).encode(), token_location(link_id))
    row = await db.fetchrow(
        f"""
        INSERT INTO pending_links
            (id, workspace_id, requester_id, platform, external_id, handle, display_name,
             scopes, token, token_kid, token_expires_at, reply_to, code_hash, approval_id,
             expires_at)
        OVERRIDING SYSTEM VALUE
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14::uuid,
                now() + make_interval(secs => $15))
        RETURNING {_COLUMNS}
        """,
        link_id,
        link.workspace_id,
        link.requester_id,
        link.platform,
        link.external_id,
        link.handle,
        link.display_name,
        link.scopes,
        envelope,
        cipher.primary_kid,
        link.token_expires_at,
        json.dumps(link.reply_to),
        code_hash,
        approval_id,
        float(ttl_seconds),
    )
    return PendingLink.from_row(row)


async def awaiting_code(
    db: Executor, *, workspace_id: int, requester_id: int
) -> list[tuple[PendingLink, bytes]]:
    """The requester's live links waiting for a code, with each code's HMAC, locked.

    Call inside a transaction: the rows stay locked until it ends, so two
    `link confirm` messages cannot both use (or both miscount) one code.
    """
    rows = await db.fetch(
        f"""
        SELECT {_COLUMNS}, code_hash FROM pending_links
         WHERE workspace_id = $1 AND requester_id = $2 AND code_hash IS NOT NULL
           AND expires_at > now()
         ORDER BY id
           FOR UPDATE
        """,
        workspace_id,
        requester_id,
    )
    return [(PendingLink.from_row(r), bytes(r["code_hash"])) for r in rows]


async def record_failed_attempt(db: Executor, link_ids: list[int]) -> int:
    """Count a wrong code against these links; drop those out of attempts. Returns how many."""
    await db.execute(
        "UPDATE pending_links SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])", link_ids
    )
    result: str = await db.execute(
        "DELETE FROM pending_links WHERE id = ANY($1::bigint[]) AND attempts >= $2",
        link_ids,
        MAX_CODE_ATTEMPTS,
    )
    return int(result.split()[-1])


async def delete(db: Executor, link_id: int) -> None:
    await db.execute("DELETE FROM pending_links WHERE id = $1", link_id)


async def take_for_approval(
    db: Executor, *, approval_id: str, workspace_id: int
) -> PendingLink | None:
    """Remove and return the link an approval is about (inside the approving transaction).

    The approval's own claim enforced its deadline; the link outlives it by
    OWNER_GRACE_SECONDS, so no expiry is checked here.
    """
    row = await db.fetchrow(
        f"""
        DELETE FROM pending_links WHERE approval_id = $1::uuid AND workspace_id = $2
        RETURNING {_COLUMNS}
        """,
        approval_id,
        workspace_id,
    )
    return PendingLink.from_row(row) if row else None


def live_for_requester_sql(*, workspace: str, requester: str) -> str:
    """The condition on `pending_links` rows `list_for_requester` returns, for its own
    query or one that asks alongside something else (`workspace`, `requester`: their
    placeholders)."""
    return (
        f"workspace_id = {workspace} AND requester_id = {requester} AND expires_at > now()"
        f" AND (approval_id IS NULL OR {_LIVE_APPROVAL})"
    )


async def list_for_requester(
    db: Executor, *, workspace_id: int, requester_id: int
) -> list[PendingLink]:
    """The requester's live pending links (for `accounts`); refused or lapsed requests drop out."""
    live = live_for_requester_sql(workspace="$1", requester="$2")
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM pending_links WHERE {live} ORDER BY id",
        workspace_id,
        requester_id,
    )
    return [PendingLink.from_row(r) for r in rows]


async def purge_expired(db: Executor) -> int:
    """Drop lapsed links and those whose owner has answered (the purge job)."""
    result: str = await db.execute(
        f"DELETE FROM pending_links WHERE expires_at < now() OR {_ANSWERED_APPROVAL}"
    )
    return int(result.split()[-1])
