"""Which received upload files (POST /api/v1/uploads) something still needs.

A file is needed while an upload approval naming it is undecided or being carried out,
and while its post is unfinished (a platform that fetches by URL reads it through the
media route until the post is processed). Anything else under the directory is
garbage once it is older than any request that could still be writing its approval.
"""

from __future__ import annotations

from storage.types import Executor


async def paths_in_use(db: Executor, *, under: str) -> set[str]:
    """The `file` source paths under the directory `under` that are still needed."""
    prefix = under.rstrip("/") + "/"
    rows = await db.fetch(
        """
        SELECT source->>'path' AS path FROM posts
         WHERE status IN ('pending', 'uploading', 'processing')
           AND source->>'kind' = 'file' AND starts_with(source->>'path', $1)
        UNION
        SELECT args->'source'->>'path' FROM pending_actions
         WHERE action = 'upload' AND status IN ('pending', 'approved')
           AND args->'source'->>'kind' = 'file' AND starts_with(args->'source'->>'path', $1)
        """,
        prefix,
    )
    return {str(r["path"]) for r in rows}
