"""Uploads: a durable post row, quota charged once, resumable from the platform's offset.

`prepare_upload` writes the post row (in the caller's transaction, beside the job
that will run it); `run_upload` is what that job does, in whichever worker picks it.
The row keeps the request, the encrypted session URI and the confirmed offset, so a
job picked up again after a crash resumes where the platform says it stands. That
only one job runs a post at a time is the job engine's business (its dedupe key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any, cast

from agent.media_links import HostedSource, MediaLinks, needs_public_url_message
from agent.observe import UPLOAD_BYTES, UPLOAD_RESUMES
from agent.ops.base import OpsBase
from agent.ports import Progress, UploadOutcome
from integrations.base import (
    ByteSource,
    HostedByteSource,
    NativeScheduler,
    SocialPlatform,
    TokenSet,
    UploadRequest,
    UploadResult,
)
from integrations.errors import (
    IntegrationError,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    RateLimited,
)
from storage import accounts, audit, posts
from storage.accounts import LinkedAccount
from storage.identity import Identity
from storage.types import Executor

log = logging.getLogger(__name__)


class PostCheckpoint:
    """UploadCheckpoint on a post row: the session URI encrypted, the offset beside it.

    The URI is written (encrypted) when it changes; a save that only moves the offset
    writes the offset alone, so a chunk's save neither re-encrypts nor rewrites the
    secret."""

    def __init__(self, ops: OpsBase, *, post_id: int) -> None:
        self._pool = ops._pool
        self._cipher = ops._cipher
        self.post_id = post_id
        self.session_saved = False  # whether a session was ever stored (then kept True)
        self._stored: str | None = None  # the session URI the row holds now

    async def load(self) -> tuple[str | None, int]:
        uri, confirmed = await posts.load_checkpoint(
            self._pool, cipher=self._cipher, post_id=self.post_id
        )
        self._stored = uri
        self.session_saved = uri is not None
        return uri, confirmed

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        if session_uri is not None and session_uri == self._stored:
            await posts.save_offset(self._pool, post_id=self.post_id, confirmed=confirmed)
            return
        await posts.save_checkpoint(
            self._pool,
            cipher=self._cipher,
            post_id=self.post_id,
            session_uri=session_uri,
            confirmed=confirmed,
        )
        self._stored = session_uri
        self.session_saved = self.session_saved or session_uri is not None


def request_to_dict(request: UploadRequest) -> dict[str, Any]:
    """The request as stored in the post's metadata (the time lives in posts.publish_at)."""
    data = asdict(request)
    data["tags"] = list(request.tags)
    del data["publish_at"]
    return data


def request_from_dict(data: Mapping[str, Any]) -> UploadRequest:
    return UploadRequest(
        title=str(data["title"]),
        privacy=str(data["privacy"]),
        description=str(data.get("description") or ""),
        tags=tuple(data.get("tags") or ()),
        category_id=data.get("category_id"),
        made_for_kids=bool(data.get("made_for_kids", False)),
        notify_subscribers=bool(data.get("notify_subscribers", True)),
    )


class Uploads(OpsBase):
    """Upload and resume videos (PlatformOps' upload part)."""

    # Set by PlatformOps: how a stored source locator becomes bytes, and the signed
    # /media links for platforms that fetch the video themselves.
    source_opener: Callable[[Mapping[str, Any]], ByteSource]
    media_links: MediaLinks

    async def prepare_upload(
        self,
        identity: Identity,
        *,
        account_ref: str,
        source: dict[str, Any],
        request: UploadRequest,
        idempotency_key: str,
        db: Executor | None = None,
    ) -> posts.Post:
        """The post row for this request (created once per idempotency key), on `db`.

        Checks the account and opens the source (its size) now, so a request that
        cannot run is refused before a job is queued for it.
        """
        account = await self._account(identity, account_ref)
        if account.status == "needs_relink":
            raise self._relink_error(account)
        self._platform(account.platform)
        byte_source = self.source_opener(source)
        post, _ = await posts.create_or_get(
            db or self._pool,
            account_id=account.id,
            platform=account.platform,
            idempotency_key=idempotency_key,
            title=request.title,
            caption=request.description,
            source=dict(source),
            metadata={"request": request_to_dict(request)},
            bytes_total=byte_source.size,
            publish_at=request.publish_at,
        )
        if post.account_id != account.id:
            raise InvalidRequest("That upload id belongs to another upload.", platform="posts")
        if post.status == "failed":
            await posts.restart(db or self._pool, post_id=post.id)
        return post

    async def run_upload(self, post_id: int, progress: Progress | None = None) -> UploadOutcome:
        """Upload (or resume, or just report) one post; what an upload job does."""
        post = await posts.get(self._pool, post_id)
        if post is None:
            raise NotFound("That upload no longer exists.", platform="posts")
        if post.status == "published":
            return self._outcome(post)
        account = await accounts.get_by_id(self._pool, post.account_id)
        if account is None:
            raise NotFound("The account of that upload was unlinked.", platform="posts")
        if account.status == "needs_relink":
            raise self._relink_error(account)
        platform = self._platform(account.platform)
        try:
            request = request_from_dict(post.metadata.get("request") or {})
        except (KeyError, TypeError, ValueError):
            await posts.mark_failed(
                self._pool, post_id=post.id, error="The stored upload request is unreadable."
            )
            raise InvalidRequest(
                "The stored upload request is unreadable.", platform="posts"
            ) from None
        native = platform.capabilities.scheduling.native
        if post.publish_at is not None and native and post.publish_at > datetime.now(UTC):
            # The platform publishes at the time. (A deferred post runs at its time, and a
            # native one whose time came before its upload ran is simply published now.)
            request = replace(request, publish_at=post.publish_at)
        source = self.source_opener(post.source)
        return await self._run_upload(post.id, account, platform, source, request, progress)

    async def set_publish_time(self, post_id: int, publish_at: datetime | None) -> None:
        """Move the time of a post its platform holds scheduled, or clear it (the post then
        stays private there); the row follows only once the platform agreed."""
        post = await posts.get(self._pool, post_id)
        if post is None or post.platform_post_id is None:
            raise NotFound("That post is not on the platform.", platform="posts")
        account = await accounts.get_by_id(self._pool, post.account_id)
        if account is None:
            raise NotFound("The account of that post was unlinked.", platform="posts")
        platform = self._platform(account.platform)
        if not platform.capabilities.scheduling.native:
            raise InvalidRequest("That platform does not schedule posts itself.", platform="posts")
        # Declared by `scheduling.native`: such a platform's client is a NativeScheduler.
        scheduler = cast(NativeScheduler, platform)
        video = post.platform_post_id
        await self._charge(account, "reschedule")
        await self._with_token(account, lambda t: scheduler.set_publish_at(t, video, publish_at))
        await posts.set_publish_at(self._pool, post_id, publish_at)

    @staticmethod
    def _outcome(post: posts.Post) -> UploadOutcome:
        meta = post.metadata
        request = meta.get("request") or {}
        return UploadOutcome(
            post_row_id=post.id,
            result=UploadResult(
                post_id=str(post.platform_post_id),
                url=meta.get("url"),
                privacy=str(meta.get("privacy") or request.get("privacy") or ""),
                privacy_forced=bool(meta.get("privacy_forced", False)),
            ),
        )

    async def _run_upload(
        self,
        post_id: int,
        account: LinkedAccount,
        platform: SocialPlatform,
        source: ByteSource,
        request: UploadRequest,
        progress: Progress | None,
    ) -> UploadOutcome:
        post = await posts.get(self._pool, post_id)
        assert post is not None
        if post.status == "published":
            return self._outcome(post)
        amounts: dict[str, int] = {}
        reservation = None
        if not post.metadata.get("quota_charged") and not post.has_session:
            try:
                amounts, reservation = await self._charge(account, "upload")
            except (QuotaExceeded, RateLimited) as exc:
                await posts.mark_failed(self._pool, post_id=post_id, error=exc.user_message)
                raise
            if amounts:
                await posts.set_metadata(self._pool, post_id, quota_charged=True)
        if post.has_session:
            UPLOAD_RESUMES.labels(account.platform).inc()
        checkpoint = PostCheckpoint(self, post_id=post_id)
        if platform.capabilities.media == "public_url":
            source = self._hosted(post, source)

        async def call(token: TokenSet) -> UploadResult:
            try:
                return await platform.upload(
                    token, source, request, checkpoint=checkpoint, progress=progress
                )
            except InvalidRequest as exc:
                if exc.reason != "needs_public_url" or self.media_links.public:
                    raise
                raise InvalidRequest(
                    self._needs_public_url_message(platform),
                    platform=exc.platform,
                    status=exc.status,
                    reason=exc.reason,
                ) from None

        try:
            result = await self._with_token(account, call)
        except IntegrationError as exc:
            if amounts and not checkpoint.session_saved:
                await self._refund(account, amounts, reservation)
                await posts.set_metadata(self._pool, post_id, quota_charged=False)
            if not exc.retryable:
                await posts.mark_failed(self._pool, post_id=post_id, error=exc.user_message)
            raise
        await posts.mark_published(
            self._pool,
            post_id=post_id,
            platform_post_id=result.post_id,
            metadata={
                "url": result.url,
                "privacy": result.privacy,
                "privacy_forced": result.privacy_forced,
            },
        )
        UPLOAD_BYTES.labels(account.platform).inc(source.size or 0)
        await audit.record(
            self._pool,
            action="upload",
            outcome="ok",
            workspace_id=account.workspace_id,
            chat_user_id=account.owner_id,
            target=account.ref,
            detail={"post": post_id, "bytes": source.size},
        )
        return UploadOutcome(post_row_id=post_id, result=result)

    def _hosted(self, post: posts.Post, source: ByteSource) -> ByteSource:
        """For platforms that fetch the video themselves: the same bytes, plus a signed,
        expiring /media/{token} URL for this post when the server is reachable."""
        if isinstance(source, HostedSource):
            return source
        url = self.media_links.url_for(post.id, post.source) if self.media_links.public else None
        hosted: HostedByteSource = HostedSource(source, public_url=url)
        return hosted

    def _needs_public_url_message(self, platform: SocialPlatform) -> str:
        return needs_public_url_message(
            platform.capabilities.display_name, self.media_links.base_url
        )
