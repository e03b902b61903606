"""Linked social accounts and their encrypted OAuth tokens.

Every read carries the workspace (and, for a user's own view, the owner): a
user never reaches another tenant's account. Tokens are decrypted only here,
returned to `integrations` callers, and never logged. A token that fails to
decrypt marks the account `needs_relink` rather than returning garbage.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from storage import approvals, pending_links
from storage.crypto import DecryptionError, Location, TokenCipher
from storage.types import Executor

log = logging.getLogger(__name__)

_COLUMNS = (
    "id, ref, workspace_id, owner_id, platform, external_id, handle, scopes,"
    " expires_at, status, created_at, updated_at"
)


class TokenUnavailable(Exception):
    """The account's token is missing or unreadable; the user must link it again."""

    def __init__(self, account_ref: str) -> None:
        super().__init__(f"account {account_ref} needs to be linked again")
        self.account_ref = account_ref


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    """A linked account as the rest of the app sees it: no token inside."""

    id: int
    ref: str
    workspace_id: int
    owner_id: int
    platform: str
    external_id: str
    handle: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    status: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> LinkedAccount:
        return cls(
            id=row["id"],
            ref=row["ref"],
            workspace_id=row["workspace_id"],
            owner_id=row["owner_id"],
            platform=row["platform"],
            external_id=row["external_id"],
            handle=row["handle"],
            scopes=tuple(row["scopes"]),
            expires_at=row["expires_at"],
            status=row["status"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


def token_location(account_id: int) -> Location:
    return Location(table="linked_accounts", row=str(account_id), column="token")


def new_ref(prefix: str) -> str:
    """An opaque, unguessable handle for the model and the chat (never a database id)."""
    return f"{prefix}-{secrets.token_hex(4)}"


class OwnedByAnother(Exception):
    """The (workspace, platform, external id) is already linked to another member.

    Linking never moves an account silently; `account` is the existing row.
    """

    def __init__(self, account: LinkedAccount) -> None:
        super().__init__(f"account {account.ref} belongs to another member")
        self.account = account


async def upsert_linked(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    *,
    cipher: TokenCipher,
    workspace_id: int,
    owner_id: int,
    platform: str,
    external_id: str,
    handle: str,
    scopes: list[str],
    token: dict[str, Any],
    expires_at: datetime | None,
    prefix: str | None = None,
) -> LinkedAccount:
    """Link (or relink, for the same owner) an account and store its token, in one transaction.

    If another member of the workspace already owns it, nothing changes and
    OwnedByAnother is raised (ownership moves only through `transfer`). The row
    id is known before the token is encrypted, so the ciphertext is bound to
    exactly this row. `prefix` starts the account's opaque ref (the platform's
    declared one; the platform name's first two letters by default).
    """
    async with conn.transaction():
        account_id: int | None = await conn.fetchval(
            """
            INSERT INTO linked_accounts (ref, workspace_id, owner_id, platform, external_id, handle)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (workspace_id, platform, external_id)
            DO UPDATE SET handle = EXCLUDED.handle
             WHERE linked_accounts.owner_id = EXCLUDED.owner_id
            RETURNING id
            """,
            new_ref(prefix or platform[:2]),
            workspace_id,
            owner_id,
            platform,
            external_id,
            handle,
        )
        if account_id is None:
            # The conflicting row is locked by the statement above until the transaction ends.
            row = await conn.fetchrow(
                f"""
                SELECT {_COLUMNS} FROM linked_accounts
                 WHERE workspace_id = $1 AND platform = $2 AND external_id = $3
                """,
                workspace_id,
                platform,
                external_id,
            )
            raise OwnedByAnother(LinkedAccount.from_row(row))
        return await _store_token(
            conn,
            cipher=cipher,
            account_id=account_id,
            token=token,
            scopes=scopes,
            expires_at=expires_at,
            owner_id=owner_id,
            handle=handle,
        )


async def transfer(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    *,
    cipher: TokenCipher,
    account_id: int,
    from_owner: int,
    to_owner: int,
    handle: str,
    scopes: list[str],
    token: dict[str, Any],
    expires_at: datetime | None,
) -> LinkedAccount | None:
    """Move an account from `from_owner` to `to_owner` with the new owner's token.

    None (and nothing changed) if the account is gone or no longer `from_owner`'s.
    Call inside the transaction that also settles the request being approved.
    """
    owner: int | None = await conn.fetchval(
        "SELECT owner_id FROM linked_accounts WHERE id = $1 FOR UPDATE", account_id
    )
    if owner != from_owner:
        return None
    return await _store_token(
        conn,
        cipher=cipher,
        account_id=account_id,
        token=token,
        scopes=scopes,
        expires_at=expires_at,
        owner_id=to_owner,
        handle=handle,
    )


async def _store_token(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy,
    *,
    cipher: TokenCipher,
    account_id: int,
    token: dict[str, Any],
    scopes: list[str],
    expires_at: datetime | None,
    owner_id: int,
    handle: str,
) -> LinkedAccount:
    envelope = cipher.encrypt(json.dumps(token).encode(), token_location(account_id))
    row = await conn.fetchrow(
        f"""
        UPDATE linked_accounts
           SET token = $2, token_kid = $3, scopes = $4, expires_at = $5, owner_id = $6,
               handle = $7, status = 'ok', updated_at = now()
         WHERE id = $1
        RETURNING {_COLUMNS}
        """,
        account_id,
        envelope,
        cipher.primary_kid,
        scopes,
        expires_at,
        owner_id,
        handle,
    )
    return LinkedAccount.from_row(row)


async def list_for_owner(
    db: Executor, *, workspace_id: int, owner_id: int, platform: str | None = None
) -> list[LinkedAccount]:
    rows = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM linked_accounts
         WHERE workspace_id = $1 AND owner_id = $2 AND ($3::text IS NULL OR platform = $3)
         ORDER BY platform, handle
        """,
        workspace_id,
        owner_id,
        platform,
    )
    return [LinkedAccount.from_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Overview:
    """What `accounts` shows a person: their accounts, and whether links of theirs
    (`pending_links`) or requests of one kind for their approval (`approvals`) wait."""

    accounts: list[LinkedAccount]
    links_waiting: bool
    approvals_waiting: bool


async def overview(
    db: Executor, *, workspace_id: int, chat_user_id: int, approval_action: str
) -> Overview:
    """The person's accounts (as `list_for_owner`) and whether anything else waits, in one
    round trip: the lists of what waits are read only when something does, which is
    rare, so the usual `accounts` answer costs one query, not three."""
    links = pending_links.live_for_requester_sql(workspace="$1", requester="$2")
    asked = approvals.waiting_sql(workspace="$1", chat_user="$2", action="$3")
    rows = await db.fetch(
        f"""
        SELECT EXISTS (SELECT 1 FROM pending_links WHERE {links}) AS links_waiting,
               EXISTS (SELECT 1 FROM pending_actions WHERE {asked}) AS approvals_waiting,
               owned.*
          FROM (SELECT 1) AS one
          LEFT JOIN LATERAL (
              SELECT {_COLUMNS} FROM linked_accounts
               WHERE workspace_id = $1 AND owner_id = $2) AS owned ON true
         ORDER BY owned.platform, owned.handle
        """,
        workspace_id,
        chat_user_id,
        approval_action,
    )
    return Overview(
        [LinkedAccount.from_row(r) for r in rows if r["id"] is not None],
        rows[0]["links_waiting"],
        rows[0]["approvals_waiting"],
    )


async def list_for_workspace(db: Executor, *, workspace_id: int) -> list[LinkedAccount]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM linked_accounts WHERE workspace_id = $1 ORDER BY platform, handle",
        workspace_id,
    )
    return [LinkedAccount.from_row(r) for r in rows]


async def get_by_ref(
    db: Executor, *, workspace_id: int, ref: str, owner_id: int | None = None
) -> LinkedAccount | None:
    """The account with this handle inside the workspace (and owned by `owner_id` if given)."""
    row = await db.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM linked_accounts
         WHERE workspace_id = $1 AND ref = $2 AND ($3::bigint IS NULL OR owner_id = $3)
        """,
        workspace_id,
        ref,
        owner_id,
    )
    return LinkedAccount.from_row(row) if row else None


async def get_by_id(db: Executor, account_id: int) -> LinkedAccount | None:
    """For internal callers (worker jobs) that already hold a trusted account id."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM linked_accounts WHERE id = $1", account_id)
    return LinkedAccount.from_row(row) if row else None


async def list_expiring(db: Executor, *, platform: str, before: datetime) -> list[LinkedAccount]:
    """Usable accounts of a platform whose token expires before `before` (for the worker)."""
    rows = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM linked_accounts
         WHERE platform = $1 AND status = 'ok' AND expires_at IS NOT NULL AND expires_at < $2
         ORDER BY expires_at
        """,
        platform,
        before,
    )
    return [LinkedAccount.from_row(r) for r in rows]


async def load_token(
    db: Executor, *, cipher: TokenCipher, account: LinkedAccount, for_update: bool = False
) -> dict[str, Any]:
    """Decrypt an account's token. Unreadable: mark `needs_relink`, raise TokenUnavailable.

    With `for_update`, `db` must be a connection inside a transaction; the row
    stays locked until it ends (the refresh path relies on this).
    """
    lock = " FOR UPDATE" if for_update else ""
    row = await db.fetchrow(
        f"SELECT token, status FROM linked_accounts WHERE id = $1{lock}", account.id
    )
    if row is None or row["token"] is None:
        raise TokenUnavailable(account.ref)
    try:
        plain = cipher.decrypt(bytes(row["token"]), token_location(account.id))
        token: dict[str, Any] = json.loads(plain)
    except (DecryptionError, ValueError):
        log.error(
            "stored token is unreadable; marking account for relink", extra={"account": account.ref}
        )
        await mark_needs_relink(db, account.id)
        raise TokenUnavailable(account.ref) from None
    return token


async def save_token(
    db: Executor,
    *,
    cipher: TokenCipher,
    account_id: int,
    token: dict[str, Any],
    expires_at: datetime | None,
) -> None:
    envelope = cipher.encrypt(json.dumps(token).encode(), token_location(account_id))
    await db.execute(
        """
        UPDATE linked_accounts
           SET token = $2, token_kid = $3, expires_at = $4, status = 'ok', updated_at = now()
         WHERE id = $1
        """,
        account_id,
        envelope,
        cipher.primary_kid,
        expires_at,
    )


async def mark_needs_relink(db: Executor, account_id: int) -> None:
    await db.execute(
        "UPDATE linked_accounts SET status = 'needs_relink', updated_at = now() WHERE id = $1",
        account_id,
    )


async def delete(db: Executor, *, workspace_id: int, account_id: int) -> bool:
    result: str = await db.execute(
        "DELETE FROM linked_accounts WHERE workspace_id = $1 AND id = $2", workspace_id, account_id
    )
    return result.endswith(" 1")
