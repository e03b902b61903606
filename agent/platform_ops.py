"""PlatformOps: linking, uploads and metrics over any configured SocialPlatform.

Platform-agnostic: everything platform-specific is behind `Deps.platforms`. Tokens
come from `agent.credentials`; uploads are durable (post row + encrypted session URI
+ confirmed offset), claimed with a Postgres advisory lock so two workers never push
the same upload, and resumed after a restart by `resume_unfinished`. Quota is
charged before a call is made; an upload the remaining budget cannot cover is
refused before any byte is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from agent import ports
from agent.context import Deps
from agent.credentials import Credentials, relink_message
from agent.media_links import HostedSource, MediaLinks
from agent.ports import MetricsReport, Progress, UploadOutcome
from agent.sources import open_source
from integrations.base import (
    AccountMetrics,
    AccountProfile,
    ByteSource,
    Figure,
    Metric,
    PostMetrics,
    SocialPlatform,
    TokenSet,
    UploadRequest,
    UploadResult,
)
from integrations.errors import (
    IntegrationError,
    InvalidRequest,
    NeedsRelink,
    NotConfigured,
    NotFound,
    PlatformUnavailable,
    QuotaExceeded,
    TokenExpired,
)
from storage import accounts, audit, metrics, oauth_states, posts
from storage.accounts import LinkedAccount, TokenUnavailable
from storage.crypto import TokenCipher
from storage.identity import Identity

log = logging.getLogger(__name__)

T = TypeVar("T")
# pg advisory-lock namespace for "an upload of post N is running" (arbitrary constant).
UPLOAD_LOCK_NS = 0x5E1F


class _AlreadyRunning(PlatformUnavailable):
    pass


class PostCheckpoint:
    """UploadCheckpoint on a post row: the session URI encrypted, the offset beside it."""

    def __init__(self, *, deps: Deps, post_id: int) -> None:
        self._pool = deps.pool
        self._cipher: TokenCipher = deps.cipher
        self.post_id = post_id
        self.session_saved = False

    async def load(self) -> tuple[str | None, int]:
        uri, confirmed = await posts.load_checkpoint(
            self._pool, cipher=self._cipher, post_id=self.post_id
        )
        self.session_saved = uri is not None
        return uri, confirmed

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        await posts.save_checkpoint(
            self._pool,
            cipher=self._cipher,
            post_id=self.post_id,
            session_uri=session_uri,
            confirmed=confirmed,
        )
        self.session_saved = self.session_saved or session_uri is not None


def request_to_dict(request: UploadRequest) -> dict[str, Any]:
    data = asdict(request)
    data["tags"] = list(request.tags)
    return data


def request_from_dict(data: Mapping[str, Any]) -> UploadRequest:
    return UploadRequest(
        title=str(data["title"]),
        description=str(data.get("description") or ""),
        tags=tuple(data.get("tags") or ()),
        privacy=data.get("privacy") or "private",
        category_id=data.get("category_id"),
        made_for_kids=bool(data.get("made_for_kids", False)),
        notify_subscribers=bool(data.get("notify_subscribers", True)),
    )


def figures_to_json(figures: Mapping[Metric, Figure]) -> dict[str, Any]:
    return {str(m): {"value": f.value, "source": f.source} for m, f in figures.items()}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _clock(reset_at: datetime | None) -> str:
    """'HH:MM UTC' for a reset time (Budgets' decisions carry an aware datetime)."""
    if reset_at is None:
        return "the next reset"
    return f"{reset_at.astimezone(UTC):%H:%M} UTC"


class PlatformOps:
    """Implements `agent.ports.PlatformOps` for every platform in `deps.platforms`."""

    def __init__(
        self,
        *,
        deps: Deps,
        credentials: Credentials | None = None,
        source_opener: Callable[[Mapping[str, Any]], ByteSource] = open_source,
        recent_posts_limit: int = 10,
        media_links: MediaLinks | None = None,
    ) -> None:
        self._deps = deps
        self._pool = deps.pool
        self.credentials = credentials or Credentials(
            pool=deps.pool, cipher=deps.cipher, platforms=deps.platforms
        )
        self._open = source_opener
        self._recent_limit = recent_posts_limit
        self.media_links = media_links or MediaLinks(
            cipher=deps.cipher,
            public_base_url=deps.config.public_base_url,
            ttl_seconds=deps.config.media_url_ttl_seconds,
        )

    # --- helpers --------------------------------------------------------------------
    def configured(self) -> list[str]:
        return sorted(self._deps.platforms)

    def _platform(self, name: str) -> SocialPlatform:
        platform = self._deps.platforms.get(name)
        if platform is None:
            raise NotConfigured(
                f"{name} is not set up on this server (its app credentials are missing).",
                platform=name,
            )
        return platform

    async def _account(self, identity: Identity, ref: str) -> LinkedAccount:
        account = await accounts.get_by_ref(
            self._pool, workspace_id=identity.workspace_id, ref=ref, owner_id=identity.chat_user_id
        )
        if account is None:
            raise NotFound(f"You have no linked account '{ref}'.", platform="accounts")
        return account

    async def _charge(
        self, platform: str, *, units: int, uploads: int = 0, account_id: int | None = None
    ) -> bool:
        """Reserve quota before a call; QuotaExceeded (with the numbers) if it can't be met.

        Returns whether something was charged that a failed call should refund.
        """
        budgets = self._deps.budgets
        if budgets is None or (units <= 0 and uploads <= 0):
            return False
        if uploads and account_id is not None:
            # Per-account publish windows (Instagram: N publishes per rolling 24 h).
            reserve_publish = getattr(budgets, f"reserve_{platform}_publish", None)
            if reserve_publish is not None:
                decision = await reserve_publish(account_id=account_id)
                if not decision.allowed:
                    raise QuotaExceeded(
                        f"This {platform} account has used its {decision.limit} publishes of "
                        f"the last 24 hours; the next one frees up in about "
                        f"{_hours(float(decision.retry_after))}.",
                        platform=platform,
                        reason="publish_limit",
                        retry_after=float(decision.retry_after),
                    )
                return False  # the rolling window is its own ledger: nothing to refund
        reserve = getattr(budgets, f"reserve_{platform}", None)
        if reserve is None:
            return False
        decision = await reserve(units=units, uploads=uploads)
        if decision.allowed:
            return True
        need = f"{units} quota units" + (f" and {uploads} upload(s)" if uploads else "")
        raise QuotaExceeded(
            f"Not enough {platform} quota left today: this needs {need}, "
            f"{decision.remaining} of {decision.limit} remain. It resets at "
            f"{_clock(decision.reset_at)} (in about {_hours(float(decision.retry_after))}).",
            platform=platform,
            reason="local_quota",
            retry_after=float(decision.retry_after),
        )

    async def _refund(self, platform: str, *, units: int, uploads: int = 0) -> None:
        refund = getattr(self._deps.budgets, f"refund_{platform}", None)
        if refund is not None:
            await refund(units=units, uploads=uploads)

    async def _with_token(
        self, account: LinkedAccount, call: Callable[[TokenSet], Awaitable[T]]
    ) -> T:
        """Run a platform call; on 401 refresh once and retry, then ask for a relink."""
        token = await self.credentials.fresh_token(account)
        try:
            return await call(token)
        except TokenExpired:
            fresh = await self.credentials.fresh_token(account, stale=token)
        try:
            return await call(fresh)
        except TokenExpired:
            await accounts.mark_needs_relink(self._pool, account.id)
            platform = self._deps.platforms.get(account.platform)
            display = getattr(platform, "display_name", account.platform)
            raise NeedsRelink(
                relink_message(account, display), platform=account.platform, status=401
            ) from None

    # --- linking --------------------------------------------------------------------
    async def start_link(
        self, identity: Identity, platform: str, *, reply_to: dict[str, Any]
    ) -> str:
        self._platform(platform)
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 chars: within PKCE's 43..128
        await oauth_states.create(
            self._pool,
            cipher=self._deps.cipher,
            state=state,
            platform=platform,
            workspace_id=identity.workspace_id,
            chat_user_id=identity.chat_user_id,
            code_verifier=verifier,
            reply_to=reply_to,
            ttl=timedelta(seconds=self._deps.config.oauth_state_ttl_seconds),
        )
        base = self._deps.config.public_base_url.rstrip("/")
        return f"{base}/oauth/{platform}/start?s={state}"

    async def unlink(self, identity: Identity, account_ref: str) -> str:
        account = await self._account(identity, account_ref)
        platform = self._deps.platforms.get(account.platform)
        if platform is not None:
            try:
                raw = await accounts.load_token(
                    self._pool, cipher=self._deps.cipher, account=account
                )
                await platform.revoke(TokenSet.from_dict(raw))
            except (IntegrationError, TokenUnavailable) as exc:
                # Best effort: the link is removed here even if Google could not be told.
                log.warning(
                    "revoke failed during unlink",
                    extra={"account": account.ref, "error": type(exc).__name__},
                )
        await accounts.delete(self._pool, workspace_id=identity.workspace_id, account_id=account.id)
        await audit.record(
            self._pool,
            action="unlink",
            outcome="ok",
            workspace_id=identity.workspace_id,
            chat_user_id=identity.chat_user_id,
            target=account.ref,
            detail={"platform": account.platform},
        )
        return account.handle

    # --- uploads --------------------------------------------------------------------
    async def upload(
        self,
        identity: Identity,
        *,
        account_ref: str,
        source: dict[str, Any],
        request: UploadRequest,
        idempotency_key: str,
        progress: Progress | None = None,
    ) -> UploadOutcome:
        account = await self._account(identity, account_ref)
        if account.status == "needs_relink":
            raise await self._relink_error(account)
        platform = self._platform(account.platform)
        byte_source = self._open(source)
        post, _ = await posts.create_or_get(
            self._pool,
            account_id=account.id,
            platform=account.platform,
            idempotency_key=idempotency_key,
            title=request.title,
            caption=request.description,
            source=dict(source),
            metadata={"request": request_to_dict(request)},
            bytes_total=byte_source.size,
        )
        if post.account_id != account.id:
            raise InvalidRequest("That upload id belongs to another upload.", platform="posts")
        if post.status == "published":
            return self._outcome(post)
        if post.status == "failed":
            await posts.restart(self._pool, post_id=post.id)
        return await self._run_upload(
            post.id, account, platform, byte_source, request, progress, identity=identity
        )

    async def _relink_error(self, account: LinkedAccount) -> NeedsRelink:
        display = getattr(
            self._deps.platforms.get(account.platform), "display_name", account.platform
        )
        return NeedsRelink(relink_message(account, display), platform=account.platform)

    @staticmethod
    def _outcome(post: posts.Post) -> UploadOutcome:
        meta = post.metadata
        request = meta.get("request") or {}
        return UploadOutcome(
            post_row_id=post.id,
            result=UploadResult(
                post_id=str(post.platform_post_id),
                url=meta.get("url"),
                privacy=str(meta.get("privacy") or request.get("privacy") or "private"),
                privacy_forced=bool(meta.get("privacy_forced", False)),
            ),
        )

    @contextlib.asynccontextmanager
    async def _claim(self, post_id: int) -> AsyncIterator[None]:
        """Hold an advisory lock for this post while uploading; released if we die."""
        async with self._pool.acquire() as conn:
            got = await conn.fetchval(
                "SELECT pg_try_advisory_lock($1::int4, $2::int4)", UPLOAD_LOCK_NS, post_id
            )
            if not got:
                raise _AlreadyRunning(
                    "This upload is already running; it will finish on its own.",
                    platform="posts",
                )
            try:
                yield
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock($1::int4, $2::int4)", UPLOAD_LOCK_NS, post_id
                )

    async def _run_upload(
        self,
        post_id: int,
        account: LinkedAccount,
        platform: SocialPlatform,
        source: ByteSource,
        request: UploadRequest,
        progress: Progress | None,
        *,
        identity: Identity | None = None,
    ) -> UploadOutcome:
        async with self._claim(post_id):
            post = await posts.get(self._pool, post_id)
            assert post is not None
            if post.status == "published":
                return self._outcome(post)
            units = platform.quota_cost("upload")
            charged_now = False
            if not post.metadata.get("quota_charged") and not post.has_session:
                try:
                    charged_now = await self._charge(
                        account.platform, units=units, uploads=1, account_id=account.id
                    )
                except QuotaExceeded as exc:
                    await posts.mark_failed(self._pool, post_id=post_id, error=exc.user_message)
                    raise
                if charged_now:
                    await posts.set_metadata(self._pool, post_id, quota_charged=True)
            checkpoint = PostCheckpoint(deps=self._deps, post_id=post_id)
            if getattr(platform, "needs_public_url", False):
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
                if charged_now and not checkpoint.session_saved:
                    await self._refund(account.platform, units=units, uploads=1)
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
            await audit.record(
                self._pool,
                action="upload",
                outcome="ok",
                workspace_id=identity.workspace_id if identity else account.workspace_id,
                chat_user_id=identity.chat_user_id if identity else account.owner_id,
                target=account.ref,
                detail={"post": post_id, "bytes": source.size},
            )
            return UploadOutcome(post_row_id=post_id, result=result)

    def _hosted(self, post: posts.Post, source: ByteSource) -> ByteSource:
        """For platforms that fetch the video themselves (Instagram): the same bytes, plus
        a signed, expiring /media/{token} URL for this post when the server is reachable."""
        if isinstance(getattr(source, "public_url", None), str):
            return source  # already public (a HostedByteSource from elsewhere)
        url = self.media_links.url_for(post.id, post.source) if self.media_links.public else None
        return HostedSource(source, public_url=url)

    def _needs_public_url_message(self, platform: SocialPlatform) -> str:
        display = getattr(platform, "display_name", platform.name)
        return (
            f"{display} fetches the video from a web address, and this bot's PUBLIC_BASE_URL "
            f"({self.media_links.base_url}) is not reachable from the internet. Set "
            "PUBLIC_BASE_URL to the bot's public https address (for example "
            "https://bot.example.com) and try again."
        )

    async def resume_unfinished(self) -> int:
        """Resume uploads a dead worker left behind; returns how many finished now."""
        finished = 0
        for post in await posts.list_unfinished(self._pool):
            account = await accounts.get_by_id(self._pool, post.account_id)
            platform = self._deps.platforms.get(post.platform)
            if account is None or platform is None:
                continue
            try:
                request = request_from_dict(post.metadata.get("request") or {})
                source = self._open(post.source)
                await self._run_upload(post.id, account, platform, source, request, None)
            except _AlreadyRunning:
                continue
            except (KeyError, TypeError, ValueError):
                await posts.mark_failed(
                    self._pool, post_id=post.id, error="The stored upload request is unreadable."
                )
                continue
            except IntegrationError as exc:
                if isinstance(exc, InvalidRequest) and exc.platform == "source":
                    await posts.mark_failed(self._pool, post_id=post.id, error=exc.user_message)
                log.warning(
                    "could not resume an upload",
                    extra={"post": post.id, "error": type(exc).__name__},
                )
                continue
            finished += 1
        return finished

    # --- metrics --------------------------------------------------------------------
    async def metrics(
        self,
        identity: Identity,
        *,
        platform: str | None = None,
        account_ref: str | None = None,
        days: int = 7,
        post_id: str | None = None,
    ) -> MetricsReport:
        if not 1 <= days <= 365:
            raise InvalidRequest("Pick a period between 1 and 365 days.", platform="metrics")
        if account_ref:
            chosen = [await self._account(identity, account_ref)]
        else:
            chosen = await accounts.list_for_owner(
                self._pool,
                workspace_id=identity.workspace_id,
                owner_id=identity.chat_user_id,
                platform=platform,
            )
        # Analytics figures settle after a day or two; the period ends yesterday (UTC).
        end = datetime.now(tz=UTC).date() - timedelta(days=1)
        start = end - timedelta(days=days - 1)
        account_rows: list[tuple[str, AccountMetrics]] = []
        post_rows: list[tuple[str, PostMetrics]] = []
        unavailable: dict[str, str] = {}
        deadline = self._deps.config.call_deadline_seconds

        async def one(account: LinkedAccount) -> None:
            impl = self._deps.platforms.get(account.platform)
            if impl is None:
                unavailable[account.platform] = "not set up on this server"
                return
            if account.status == "needs_relink":
                unavailable[account.platform] = (await self._relink_error(account)).user_message
                return
            try:
                # Accounts are read concurrently, each under the deadline, so one slow
                # platform costs at most the deadline and never hides the others' figures.
                acct, post_metrics = await asyncio.wait_for(
                    self._account_metrics(account, impl, start=start, end=end, post_id=post_id),
                    timeout=deadline,
                )
            except IntegrationError as exc:
                unavailable[account.platform] = exc.user_message
                return
            except TimeoutError:
                display = getattr(impl, "display_name", account.platform)
                unavailable[account.platform] = f"{display} did not answer in time"
                return
            account_rows.append((account.ref, acct))
            post_rows.extend((account.ref, m) for m in post_metrics)

        await asyncio.gather(*(one(account) for account in chosen))
        order = {account.ref: i for i, account in enumerate(chosen)}
        account_rows.sort(key=lambda row: order[row[0]])
        post_rows.sort(key=lambda row: order[row[0]])
        return MetricsReport(
            as_of=datetime.now(tz=UTC),
            accounts=account_rows,
            posts=post_rows,
            unavailable=unavailable,
        )

    async def _account_metrics(
        self,
        account: LinkedAccount,
        platform: SocialPlatform,
        *,
        start: date,
        end: date,
        post_id: str | None,
    ) -> tuple[AccountMetrics, list[PostMetrics]]:
        profile = AccountProfile(
            external_id=account.external_id, handle=account.handle, display_name=account.handle
        )
        page = int(getattr(platform, "page_size", 50))
        if post_id:
            ids = [post_id]
        else:
            pages = math.ceil(self._recent_limit / page)
            await self._charge(account.platform, units=platform.quota_cost("recent_posts") * pages)
            recent = await self._with_token(
                account, lambda t: platform.recent_posts(t, profile, limit=self._recent_limit)
            )
            ids = [p.post_id for p in recent]
        post_metrics: list[PostMetrics] = []
        if ids:
            calls = math.ceil(len(ids) / page)
            await self._charge(account.platform, units=platform.quota_cost("post_metrics") * calls)
            post_metrics = await self._with_token(account, lambda t: platform.post_metrics(t, ids))
        await self._charge(account.platform, units=platform.quota_cost("account_metrics"))
        acct = await self._with_token(
            account, lambda t: platform.account_metrics(t, profile, start=start, end=end)
        )
        for pm in post_metrics:
            await metrics.record(
                self._pool,
                account_id=account.id,
                platform_post_id=pm.post_id,
                captured_at=pm.as_of,
                metrics=figures_to_json(pm.figures),
            )
        await metrics.record(
            self._pool,
            account_id=account.id,
            period=f"{start.isoformat()}..{end.isoformat()}",
            captured_at=acct.as_of,
            metrics={
                "totals": figures_to_json(acct.figures),
                "series": [
                    {"day": d.isoformat(), "figures": figures_to_json(f)} for d, f in acct.series
                ],
            },
        )
        return acct, post_metrics


def _conforms(ops: PlatformOps) -> ports.PlatformOps:
    """Type-check only: PlatformOps implements the agent.ports.PlatformOps protocol."""
    return ops
