"""Re-encrypt every secret at rest under the newest key, in batches, resumable.

Each batch is its own transaction and only picks rows whose key id is not the
primary one, so a killed rotation simply continues where it stopped. Rows that
cannot be decrypted are skipped and counted (linked accounts among them are
marked `needs_relink`); they never stop the rotation.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg

from storage.crypto import DecryptionError, Location, TokenCipher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    table: str
    id_column: str
    column: str
    kid_column: str


# Every encrypted column in the schema. A migration adding one adds it here.
ENCRYPTED_COLUMNS: list[EncryptedColumn] = [
    EncryptedColumn("linked_accounts", "id", "token", "token_kid"),
    EncryptedColumn("workspaces", "id", "bot_token", "bot_token_kid"),
    EncryptedColumn("oauth_states", "state_hash", "code_verifier", "code_verifier_kid"),
    EncryptedColumn("pending_links", "id", "token", "token_kid"),
    EncryptedColumn("posts", "id", "upload_session", "upload_session_kid"),
    EncryptedColumn("slack_bots", "id", "bot_token", "bot_token_kid"),
    EncryptedColumn("slack_bots", "id", "bot_refresh_token", "bot_refresh_token_kid"),
]


def row_key(value: object) -> str:
    """The row part of a Location: ids as decimal text, byte keys as hex."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)


async def rotate_keys(
    pool: asyncpg.Pool,
    cipher: TokenCipher,
    *,
    batch_size: int = 500,
    pause_seconds: float = 0.0,
    columns: list[EncryptedColumn] | None = None,
) -> RotationReport:
    """Rotate every column; `pause_seconds` between batches throttles the load on Postgres."""
    report = RotationReport()
    for col in columns or ENCRYPTED_COLUMNS:
        name = f"{col.table}.{col.column}"
        report.rotated[name] = 0
        report.unreadable[name] = 0
        skipped: list[str] = []
        while True:
            async with pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    f"""
                    SELECT {col.id_column} AS rid, {col.column} AS data FROM {col.table}
                     WHERE {col.column} IS NOT NULL AND {col.kid_column} <> $1
                       AND NOT ({col.id_column}::text = ANY($3::text[]))
                     ORDER BY {col.id_column}
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                    """,
                    cipher.primary_kid,
                    batch_size,
                    skipped,
                )
                if not rows:
                    break
                updates = []
                for row in rows:
                    where = Location(col.table, row_key(row["rid"]), col.column)
                    try:
                        plain = cipher.decrypt(bytes(row["data"]), where)
                    except DecryptionError:
                        skipped.append(
                            str(row["rid"])
                            if not isinstance(row["rid"], bytes)
                            else "\\x" + row["rid"].hex()
                        )
                        report.unreadable[name] += 1
                        if col.table == "linked_accounts":
                            await conn.execute(
                                "UPDATE linked_accounts SET status = 'needs_relink' WHERE id = $1",
                                row["rid"],
                            )
                        continue
                    updates.append((row["rid"], cipher.encrypt(plain, where), cipher.primary_kid))
                if updates:
                    await conn.executemany(
                        f"UPDATE {col.table} SET {col.column} = $2, {col.kid_column} = $3"
                        f" WHERE {col.id_column} = $1",
                        updates,
                    )
                report.rotated[name] += len(updates)
            log.info("rotated a batch", extra={"column": name, "rows": len(updates)})
            if pause_seconds:
                await asyncio.sleep(pause_seconds)
    return report
