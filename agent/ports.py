"""Ports between the conversation (tools, commands, approvals) and platform work.

`PlatformOps` is implemented once, platform-agnostically, in `agent/platform_ops.py`
on top of `integrations.base.SocialPlatform` and storage. Tools and commands call
it through `Deps.ops`, so the conversation code never touches a token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from integrations.base import AccountMetrics, PostMetrics, UploadRequest, UploadResult
from storage.accounts import LinkedAccount
from storage.identity import Identity, Member
from storage.posts import Post
from storage.types import Executor

Progress = Callable[[int, int], Awaitable[None]]  # (bytes confirmed, total)


@dataclass(frozen=True, slots=True)
class MetricsReport:
    """Metrics for a user's accounts; `unavailable` names platforms that failed (partial result)."""

    as_of: datetime
    accounts: list[tuple[str, AccountMetrics]] = field(
        default_factory=list
    )  # (account ref, metrics)
    posts: list[tuple[str, PostMetrics]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # platform -> user-facing reason


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    post_row_id: int
    result: UploadResult


# The approval an account's current owner gives before it moves to another member.
TRANSFER_ACTION = "link_transfer"


class LinkRefused(Exception):
    """A link cannot go on (unknown, used or expired state; another browser or person;
    tampered verifier; declined; a wrong code). Nothing was linked.

    `str(err)` is a sentence for the person in the browser or the chat.
    """


@dataclass(frozen=True, slots=True)
class Linked:
    """The account is linked to the requester and usable."""

    account: LinkedAccount
    title: str  # the account's own name on the platform


@dataclass(frozen=True, slots=True)
class AwaitingCode:
    """Stored pending: the requester must type `link confirm <code>` (the code is shown once)."""

    code: str
    title: str
    expires_in_seconds: int


@dataclass(frozen=True, slots=True)
class AwaitingOwner:
    """Already linked to another member: nothing moved; their approval is waiting."""

    account: LinkedAccount  # the current owner's row
    owner: Member
    requester: Member
    title: str


LinkOutcome = Linked | AwaitingCode | AwaitingOwner


@dataclass(frozen=True, slots=True)
class Transferred:
    """An approved move: the account now belongs to `requester`."""

    account: LinkedAccount
    requester: Member
    reply_to: dict[str, Any]


@runtime_checkable
class PlatformOps(Protocol):
    """Platform work on behalf of one identity. Raises `integrations.errors` (user-safe)."""

    def configured(self) -> list[str]:
        """Names of platforms whose credentials are set."""

    async def start_link(
        self, identity: Identity, platform: str, *, reply_to: dict[str, Any]
    ) -> str:
        """A one-time URL (our /oauth/<platform>/start?s=...) for the requester only."""

    async def confirm_link(self, identity: Identity, text: str) -> Linked | AwaitingOwner:
        """Activate the requester's pending link named by the code in `text` (LinkRefused)."""

    async def approve_transfer(
        self, owner: Identity, *, approval_id: str, account_ref: str, requester_id: int
    ) -> Transferred:
        """Move an account from its approving owner to the requester (LinkRefused)."""

    async def unlink(self, identity: Identity, account_ref: str) -> str:
        """Revoke at the platform (best effort) and delete the account; returns its handle."""

    async def prepare_upload(
        self,
        identity: Identity,
        *,
        account_ref: str,
        source: dict[str, Any],
        request: UploadRequest,
        idempotency_key: str,
        db: Executor | None = None,
    ) -> Post:
        """The post row for an upload request (one per idempotency key), written on `db`."""

    async def run_upload(self, post_id: int, progress: Progress | None = None) -> UploadOutcome:
        """Upload or resume one post from its row (see agent/sources.py); idempotent."""

    async def set_publish_time(self, post_id: int, publish_at: datetime | None) -> None:
        """Move (or clear: it stays private) the time of a post its platform holds
        scheduled (`capabilities.scheduling.native`)."""

    async def metrics(
        self,
        identity: Identity,
        *,
        platform: str | None = None,
        account_ref: str | None = None,
        days: int = 7,
        post_id: str | None = None,
        shorten: bool = False,
    ) -> MetricsReport:
        """Normalized metrics for the requester's accounts over the last `days` days."""
