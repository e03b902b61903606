"""Posts: one row per upload request, keyed by an idempotency key.

The row carries the resumable session URI (encrypted: it grants write access to
the upload) and the offset the platform last confirmed, so any worker can resume
after a crash. `UNIQUE (platform, platform_post_id)` and the idempotency key make
one request map to at most one platform post.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.crypto import Location, TokenCipher
from storage.types import Executor

_COLUMNS = (
    "id, account_id, platform, platform_post_id, title, caption, status, source, metadata,"
    " upload_session IS NOT NULL AS has_session, bytes_total, bytes_confirmed,"
    " idempotency_key, error, created_at, updated_at, publish_at"
)

UNFINISHED = ("pending", "uploading")


def session_location(post_id: int) -> Location:
    return Location(table="posts", row=str(post_id), column="upload_session")


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str) else dict(value)


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    account_id: int
    platform: str
    platform_post_id: str | None
    title: str | None
    caption: str | None
    status: str
    source: dict[str, Any]
    metadata: dict[str, Any]
    has_session: bool
    bytes_total: int | None
    bytes_confirmed: int
    idempotency_key: str
    error: str | None
    created_at: datetime
    updated_at: datetime
    # When a scheduled post is due (UTC); None: as soon as its job runs.
    publish_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> Post:
        return cls(
            id=row["id"],
            account_id=row["account_id"],
            platform=row["platform"],
            platform_post_id=row["platform_post_id"],
            title=row["title"],
            caption=row["caption"],
            status=row["status"],
            source=_json(row["source"]),
            metadata=_json(row["metadata"]),
            has_session=row["has_session"],
            bytes_total=row["bytes_total"],
            bytes_confirmed=row["bytes_confirmed"],
            idempotency_key=row["idempotency_key"],
            error=row["error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            publish_at=row["publish_at"],
        )


async def create_or_get(
    db: Executor,
    *,
    account_id: int,
    platform: str,
    idempotency_key: str,
    title: str | None,
    caption: str | None,
    source: dict[str, Any],
    metadata: dict[str, Any],
    bytes_total: int | None,
    publish_at: datetime | None = None,
) -> tuple[Post, bool]:
    """The post for this idempotency key, creating it if new; returns (post, created)."""
    row = await db.fetchrow(
        f"""
        INSERT INTO posts (account_id, platform, idempotency_key, title, caption, source,
                           metadata, bytes_total, publish_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        account_id,
        platform,
        idempotency_key,
        title,
        caption,
        json.dumps(source),
        json.dumps(metadata),
        bytes_total,
        publish_at,
    )
    if row is not None:
        return Post.from_row(row), True
    existing = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM posts WHERE idempotency_key = $1", idempotency_key
    )
    assert existing is not None  # the conflicting row exists (posts are never deleted alone)
    return Post.from_row(existing), False


async def get(db: Executor, post_id: int) -> Post | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM posts WHERE id = $1", post_id)
    return Post.from_row(row) if row else None


async def list_unfinished(db: Executor, *, limit: int = 100) -> list[Post]:
    rows = await db.fetch(
        f"""
        SELECT {_COLUMNS} FROM posts
         WHERE status = ANY($1::text[])
         ORDER BY updated_at
         LIMIT $2
        """,
        list(UNFINISHED),
        limit,
    )
    return [Post.from_row(r) for r in rows]


async def load_checkpoint(
    db: Executor, *, cipher: TokenCipher, post_id: int
) -> tuple[str | None, int]:
    """The decrypted session URI (None if absent) and the confirmed offset."""
    row = await db.fetchrow(
        "SELECT upload_session, bytes_confirmed FROM posts WHERE id = $1", post_id
    )
    if row is None or row["upload_session"] is None:
        return None, 0 if row is None else int(row["bytes_confirmed"])
    uri = cipher.decrypt_str(bytes(row["upload_session"]), session_location(post_id))
    return uri, int(row["bytes_confirmed"])


async def save_checkpoint(
    db: Executor,
    *,
    cipher: TokenCipher,
    post_id: int,
    session_uri: str | None,
    confirmed: int,
) -> None:
    envelope = cipher.encrypt_str(session_uri, session_location(post_id)) if session_uri else None
    await db.execute(
        """
        UPDATE posts
           SET upload_session = $2, upload_session_kid = $3, bytes_confirmed = $4,
               status = CASE WHEN status = 'pending' THEN 'uploading' ELSE status END,
               updated_at = now()
         WHERE id = $1
        """,
        post_id,
        envelope,
        cipher.primary_kid if envelope else None,
        confirmed,
    )


async def save_offset(db: Executor, *, post_id: int, confirmed: int) -> None:
    """Move a checkpoint's offset, its session URI as stored (`save_checkpoint`)."""
    await db.execute(
        """
        UPDATE posts
           SET bytes_confirmed = $2,
               status = CASE WHEN status = 'pending' THEN 'uploading' ELSE status END,
               updated_at = now()
         WHERE id = $1
        """,
        post_id,
        confirmed,
    )


async def set_metadata(db: Executor, post_id: int, **values: Any) -> None:
    """Merge keys into the post's metadata (e.g. that its quota was charged)."""
    await db.execute(
        "UPDATE posts SET metadata = metadata || $2::jsonb, updated_at = now() WHERE id = $1",
        post_id,
        json.dumps(values),
    )


async def mark_published(
    db: Executor, *, post_id: int, platform_post_id: str, metadata: dict[str, Any]
) -> None:
    """Record the platform's post id and drop the (secret) session URI."""
    await db.execute(
        """
        UPDATE posts
           SET platform_post_id = $2, status = 'published', upload_session = NULL,
               upload_session_kid = NULL, bytes_confirmed = COALESCE(bytes_total, bytes_confirmed),
               metadata = metadata || $3::jsonb, error = NULL, updated_at = now()
         WHERE id = $1
        """,
        post_id,
        platform_post_id,
        json.dumps(metadata),
    )


async def mark_failed(db: Executor, *, post_id: int, error: str) -> None:
    await db.execute(
        "UPDATE posts SET status = 'failed', error = $2, updated_at = now() WHERE id = $1",
        post_id,
        error,
    )


async def restart(db: Executor, *, post_id: int) -> None:
    """A failed post asked for again: back to pending, keeping any live session."""
    await db.execute(
        "UPDATE posts SET status = 'pending', error = NULL, updated_at = now()"
        " WHERE id = $1 AND status = 'failed'",
        post_id,
    )


async def list_for_owner(
    db: Executor, *, workspace_id: int, owner_id: int, limit: int = 50
) -> list[Post]:
    """The newest posts of one chat user's accounts in one workspace (tenancy in the query)."""
    rows = await db.fetch(
        """
        SELECT p.id, p.account_id, p.platform, p.platform_post_id, p.title, p.caption,
               p.status, p.source, p.metadata, p.upload_session IS NOT NULL AS has_session,
               p.bytes_total, p.bytes_confirmed, p.idempotency_key, p.error, p.created_at,
               p.updated_at, p.publish_at
          FROM posts p JOIN linked_accounts a ON a.id = p.account_id
         WHERE a.workspace_id = $1 AND a.owner_id = $2
         ORDER BY p.created_at DESC, p.id DESC
         LIMIT $3
        """,
        workspace_id,
        owner_id,
        limit,
    )
    return [Post.from_row(r) for r in rows]


async def set_publish_at(db: Executor, post_id: int, publish_at: datetime | None) -> None:
    """A scheduled post's new time (None: no longer scheduled)."""
    await db.execute(
        "UPDATE posts SET publish_at = $2, updated_at = now() WHERE id = $1", post_id, publish_at
    )
