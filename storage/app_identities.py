"""Companion-app users tied to chat users (tables `app_connect_codes`, `app_identities`).

A tie is made only by a one-time code the chat user was shown privately (`connect app`)
and the app user then entered: never by matching names or emails. The code is kept
as an HMAC under a key derived from TOKEN_ENCRYPTION_KEYS, so a database read does
not yield a usable code; claiming it deletes it (single use).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from hashlib import sha256

from storage.crypto import TokenCipher
from storage.identity import Identity
from storage.types import Executor

# No 0/O or 1/I: the code is read in chat and typed into the app.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10  # 50 bits
_PURPOSE = "app-connect-code/v1"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str | None:
    """What the person typed -> the code, ignoring case, spaces and dashes; None if malformed."""
    code = "".join(ch for ch in text.upper() if ch not in " -")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def _digests(cipher: TokenCipher, code: str) -> list[bytes]:
    """The code's HMAC under every configured key (a key rotation may sit in between)."""
    out = []
    for kid in cipher.key_ids:
        _, key = cipher.derive_key(_PURPOSE, kid)
        out.append(hmac.new(key, code.encode(), sha256).digest())
    return out


async def create_code(
    db: Executor, cipher: TokenCipher, *, chat_user_id: int, ttl_seconds: int
) -> str:
    """A fresh code for this chat user; any earlier one of theirs stops working."""
    code = new_code()
    _, key = cipher.derive_key(_PURPOSE)
    digest = hmac.new(key, code.encode(), sha256).digest()
    await drop_codes(db, chat_user_id=chat_user_id)
    await db.execute(
        """
        INSERT INTO app_connect_codes (chat_user_id, code_hash, expires_at)
        VALUES ($1, $2, now() + make_interval(secs => $3))
        """,
        chat_user_id,
        digest,
        float(ttl_seconds),
    )
    return code


async def drop_codes(db: Executor, *, chat_user_id: int) -> None:
    """Make this chat user's unclaimed codes stop working."""
    await db.execute("DELETE FROM app_connect_codes WHERE chat_user_id = $1", chat_user_id)


async def claim(db: Executor, cipher: TokenCipher, *, code: str, subject: str) -> int | None:
    """Tie `subject` to the code's chat user; the chat user's id, or None (unknown, used,
    expired). The delete is the claim: two concurrent claims cannot both succeed."""
    chat_user_id: int | None = await db.fetchval(
        """
        WITH taken AS (
            DELETE FROM app_connect_codes WHERE code_hash = ANY($1::bytea[])
            RETURNING chat_user_id, expires_at
        )
        SELECT chat_user_id FROM taken WHERE expires_at > now()
        """,
        _digests(cipher, code),
    )
    if chat_user_id is None:
        return None
    await db.execute(
        """
        WITH me AS (SELECT workspace_id FROM chat_users WHERE id = $1),
        dropped AS (
            DELETE FROM app_identities
             WHERE subject = $2 AND workspace_id = (SELECT workspace_id FROM me)
               AND chat_user_id <> $1
        )
        INSERT INTO app_identities (chat_user_id, workspace_id, subject)
        SELECT $1, workspace_id, $2 FROM me
        ON CONFLICT (chat_user_id)
        DO UPDATE SET subject = EXCLUDED.subject, created_at = now()
        """,
        chat_user_id,
        subject,
    )
    return chat_user_id


@dataclass(frozen=True, slots=True)
class AppLink:
    """One chat user an app user acts as, with the workspace's name to choose by."""

    identity: Identity
    workspace_name: str | None


async def links_for(db: Executor, subject: str) -> list[AppLink]:
    """Every chat user this app user is tied to, one per workspace, oldest workspace first."""
    rows = await db.fetch(
        """
        SELECT u.id, u.workspace_id, u.external_id, w.frontend, w.external_id AS w_external,
               w.name
          FROM app_identities a
          JOIN chat_users u ON u.id = a.chat_user_id
          JOIN workspaces w ON w.id = a.workspace_id
         WHERE a.subject = $1
         ORDER BY a.workspace_id
        """,
        subject,
    )
    return [
        AppLink(
            Identity(
                workspace_id=r["workspace_id"],
                chat_user_id=r["id"],
                frontend=r["frontend"],
                workspace_external_id=r["w_external"],
                user_external_id=r["external_id"],
            ),
            r["name"],
        )
        for r in rows
    ]


async def disconnect(db: Executor, *, chat_user_id: int) -> bool:
    """Untie whatever app user acts as this chat user; False if none did."""
    result: str = await db.execute(
        "DELETE FROM app_identities WHERE chat_user_id = $1", chat_user_id
    )
    return result != "DELETE 0"


async def purge_expired(db: Executor) -> int:
    """Drop codes nobody claimed in time."""
    result: str = await db.execute("DELETE FROM app_connect_codes WHERE expires_at <= now()")
    return int(result.split()[-1])
