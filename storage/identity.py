"""Workspaces and chat users: who is talking, in which tenant."""

from __future__ import annotations

from dataclasses import dataclass

from storage.types import Executor


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller of an action: always a chat user inside one workspace."""

    workspace_id: int
    chat_user_id: int
    frontend: str
    workspace_external_id: str
    user_external_id: str


async def ensure_workspace(
    db: Executor, *, frontend: str, external_id: str, name: str | None = None
) -> int:
    """Upsert a workspace and return its id (one statement, race-free)."""
    workspace_id: int = await db.fetchval(
        """
        INSERT INTO workspaces (frontend, external_id, name) VALUES ($1, $2, $3)
        ON CONFLICT (frontend, external_id)
        DO UPDATE SET name = COALESCE(EXCLUDED.name, workspaces.name)
        RETURNING id
        """,
        frontend,
        external_id,
        name,
    )
    return workspace_id


async def ensure_chat_user(
    db: Executor, *, workspace_id: int, external_id: str, display_name: str | None = None
) -> int:
    """Upsert a chat user of a workspace and return its id."""
    user_id: int = await db.fetchval(
        """
        INSERT INTO chat_users (workspace_id, external_id, display_name) VALUES ($1, $2, $3)
        ON CONFLICT (workspace_id, external_id)
        DO UPDATE SET display_name = COALESCE(EXCLUDED.display_name, chat_users.display_name)
        RETURNING id
        """,
        workspace_id,
        external_id,
        display_name,
    )
    return user_id


async def resolve(
    db: Executor,
    *,
    frontend: str,
    workspace_external_id: str,
    user_external_id: str,
    workspace_name: str | None = None,
    user_display_name: str | None = None,
) -> Identity:
    """The Identity for a front-end's (workspace, user) pair, creating rows on first sight."""
    workspace_id = await ensure_workspace(
        db, frontend=frontend, external_id=workspace_external_id, name=workspace_name
    )
    user_id = await ensure_chat_user(
        db, workspace_id=workspace_id, external_id=user_external_id, display_name=user_display_name
    )
    return Identity(
        workspace_id=workspace_id,
        chat_user_id=user_id,
        frontend=frontend,
        workspace_external_id=workspace_external_id,
        user_external_id=user_external_id,
    )


@dataclass(frozen=True, slots=True)
class Member:
    """A chat user as someone else's request sees them: to name and to notify them."""

    identity: Identity
    display_name: str | None

    @property
    def mention(self) -> str:
        """How to name them to someone else: a mention where the chat renders one."""
        if self.identity.frontend in {"slack", "discord"}:
            return f"<@{self.identity.user_external_id}>"
        return self.display_name or self.identity.user_external_id

    @property
    def reply_to(self) -> dict[str, str]:
        """Where a front-end's notifier reaches them directly (a DM; the shell's output)."""
        return {
            "frontend": self.identity.frontend,
            "workspace_id": self.identity.workspace_external_id,
            "user_id": self.identity.user_external_id,
        }


async def member(db: Executor, chat_user_id: int) -> Member | None:
    """The chat user with this id, with their workspace's front-end and external ids."""
    row = await db.fetchrow(
        """
        SELECT u.id, u.workspace_id, u.external_id, u.display_name, w.frontend,
               w.external_id AS workspace_external_id
          FROM chat_users u JOIN workspaces w ON w.id = u.workspace_id
         WHERE u.id = $1
        """,
        chat_user_id,
    )
    if row is None:
        return None
    ident = Identity(
        workspace_id=row["workspace_id"],
        chat_user_id=row["id"],
        frontend=row["frontend"],
        workspace_external_id=row["workspace_external_id"],
        user_external_id=row["external_id"],
    )
    return Member(ident, row["display_name"])
