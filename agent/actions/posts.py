"""The requester's posts and where each upload stands."""

from __future__ import annotations

from agent.context import ActionContext
from storage import posts as store
from storage.posts import Post


async def list_posts(ctx: ActionContext, *, limit: int = 50) -> list[Post]:
    """The newest posts of the requester's own accounts in their workspace."""
    ident = ctx.identity
    return await store.list_for_owner(
        ctx.deps.pool,
        workspace_id=ident.workspace_id,
        owner_id=ident.chat_user_id,
        limit=max(1, min(limit, 200)),
    )
