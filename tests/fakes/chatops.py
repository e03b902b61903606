"""In-test fakes for the conversation: platform work, reply sink, budgets.

`FakeOps` implements `agent.ports.PlatformOps`, records every call, and fails
loudly on any operation a test did not allow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.limits import Admission, BudgetStatus, Decision, NoLimits
from agent.ops.uploads import request_to_dict
from agent.ports import (
    AwaitingOwner,
    Linked,
    LinkRefused,
    MetricsReport,
    Progress,
    Transferred,
    UploadOutcome,
)
from bot.core.messages import ApprovalRequest, Reply
from integrations.base import UploadRequest, UploadResult
from storage import accounts, posts
from storage.identity import Identity
from storage.posts import Post
from storage.types import Executor


class FakeOps:
    """PlatformOps that records calls; anything not in `allow` raises AssertionError."""

    def __init__(
        self,
        *,
        allow: set[str] | frozenset[str] = frozenset(),
        platforms: tuple[str, ...] = ("youtube", "instagram"),
        report: MetricsReport | None = None,
        fail: dict[str, Exception] | None = None,
    ) -> None:
        self.allow = set(allow)
        self.fail = dict(fail or {})
        self.platforms = platforms
        self.report = report
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _record(self, name: str, **kwargs: Any) -> None:
        if name not in self.allow:
            raise AssertionError(f"unexpected PlatformOps.{name}({kwargs})")
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def configured(self) -> list[str]:
        return list(self.platforms)

    async def start_link(
        self, identity: Identity, platform: str, *, reply_to: dict[str, Any]
    ) -> str:
        self._record("start_link", identity=identity, platform=platform, reply_to=reply_to)
        return f"http://localhost:8000/oauth/{platform}/start?s=one-time-{identity.chat_user_id}"

    async def unlink(self, identity: Identity, account_ref: str) -> str:
        self._record("unlink", identity=identity, account_ref=account_ref)
        return "handle"

    async def confirm_link(self, identity: Identity, text: str) -> Linked | AwaitingOwner:
        self._record("confirm_link", identity=identity, text=text)
        raise LinkRefused("You have no link waiting for a code.")

    async def approve_transfer(
        self, owner: Identity, *, approval_id: str, account_ref: str, requester_id: int
    ) -> Transferred:
        self._record(
            "approve_transfer",
            owner=owner,
            approval_id=approval_id,
            account_ref=account_ref,
            requester_id=requester_id,
        )
        raise LinkRefused("That request is no longer waiting; nothing was changed.")

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
        """Records an "upload" and writes a real post row (the job's row points at it)."""
        self._record(
            "upload",
            identity=identity,
            account_ref=account_ref,
            source=source,
            request=request,
            idempotency_key=idempotency_key,
        )
        assert db is not None, "an upload's post row is written in the enqueueing transaction"
        account = await accounts.get_by_ref(
            db, workspace_id=identity.workspace_id, ref=account_ref, owner_id=identity.chat_user_id
        )
        assert account is not None
        post, _ = await posts.create_or_get(
            db,
            account_id=account.id,
            platform=account.platform,
            idempotency_key=idempotency_key,
            title=request.title,
            caption=request.description,
            source=source,
            metadata={"request": request_to_dict(request)},
            bytes_total=100,
            publish_at=request.publish_at,
        )
        return post

    async def run_upload(self, post_id: int, progress: Progress | None = None) -> UploadOutcome:
        self._record("run_upload", post_id=post_id)
        if progress is not None:
            await progress(50, 100)
            await progress(100, 100)
        return UploadOutcome(post_id, UploadResult("vid123", "https://youtu.be/vid123", "private"))

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
        self._record(
            "metrics",
            identity=identity,
            platform=platform,
            account_ref=account_ref,
            days=days,
            post_id=post_id,
        )
        assert self.report is not None, "test did not set a metrics report"
        return self.report


@dataclass
class RecordingSink:
    """A ReplySink that keeps everything it was asked to do."""

    sent: list[str] = field(default_factory=list)
    updates: list[tuple[str, str]] = field(default_factory=list)
    private: list[str] = field(default_factory=list)
    approvals: list[ApprovalRequest] = field(default_factory=list)
    # Every reply as given, public and private ("public" / "private", Reply), in order.
    replies: list[tuple[str, Reply]] = field(default_factory=list)

    async def send(self, reply: Reply) -> str:
        self.sent.append(reply.text)
        self.replies.append(("public", reply))
        return str(len(self.sent))

    async def update(self, message_ref: str, reply: Reply) -> None:
        self.updates.append((message_ref, reply.text))

    async def send_private(self, reply: Reply) -> None:
        self.private.append(reply.text)
        self.replies.append(("private", reply))

    async def ask_approval(self, request: ApprovalRequest) -> None:
        self.approvals.append(request)

    @property
    def text(self) -> str:
        return "\n".join(self.sent)


class RecordingBudgets(NoLimits):
    """Budgets that allow (or refuse) messages, record token charges and which limiter
    calls a message made (each one a Redis round trip in production)."""

    def __init__(self, *, allow_messages: bool = True, allow_llm: bool = True) -> None:
        self.allow_messages = allow_messages
        self.allow_llm = allow_llm
        self.charged: list[int] = []
        self.calls: list[str] = []

    async def check_message(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        self.calls.append("check_message")
        return self._message()

    def _message(self) -> Decision:
        return Decision(
            self.allow_messages,
            20,
            0 if not self.allow_messages else 19,
            0 if self.allow_messages else 12.5,
            None,
        )

    async def admit_run(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        tokens: int,
        ttl: float,
        at_least: int | None = None,
    ) -> Admission:
        self.calls.append("admit_run")
        message = self._message()
        if not message.allowed:
            return Admission(message)
        reset = datetime(2030, 1, 1, tzinfo=UTC)
        tokens_left = Decision(self.allow_llm, 1000, 1000 - sum(self.charged), 0.0, reset)
        return Admission(message, "run" if self.allow_llm else None, tokens_left, tokens)

    async def finish_run(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        admission: Admission,
        used: int,
    ) -> None:
        self.calls.append("finish_run")
        if used:
            self.charged.append(used)

    async def report(
        self, *, workspace_id: int, chat_user_id: int, accounts: Any = ()
    ) -> list[BudgetStatus]:
        used = sum(self.charged)
        return [
            BudgetStatus(
                "user", "llm_tokens", "LLM tokens", used, 1000, 1000 - used, None, reset_zone="UTC"
            )
        ]
