"""Construct each runnable part from Services. The one place that knows every part.

`Assembly` builds each shared object once per process (the conversation core,
platform operations, the Slack adapter) and hands the same instances to every
part that needs them. Objects that need the database pool are built lazily,
because parts are constructed before `Services.initialize()` opens it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.admins import Admins, DiscordAdmins, local_operator
from bot.services import Part, Services

if TYPE_CHECKING:
    from fastapi import APIRouter
    from langchain_core.language_models import BaseChatModel
    from starlette.types import ASGIApp

    from agent.context import AgentConfig, Deps
    from agent.digest_insights import Commentary
    from agent.ops import PlatformOps
    from agent.runner import RunnerConfig
    from agent.sources import SourceOpeners
    from bot.api.uploads import UploadStore
    from bot.chat_profiles import ChatProfiles
    from bot.core.service import ChatOpsService
    from bot.job_board import JobBoard
    from bot.signin import SignIn
    from bot.slack import SlackAdapter

log = logging.getLogger(__name__)

# A received upload file nothing refers to is kept this long: past any request still
# writing its approval (the purge job removes it after).
UPLOAD_FILE_MIN_AGE_SECONDS = 3600.0


class PartUnavailable(Exception):
    """A part was asked for whose feature is not configured or not built."""


class Assembly:
    """Shared objects of one process, built on first use and reused by every part."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings

    @cached_property
    def sources(self) -> SourceOpeners:
        """How stored source locators become bytes, for this process."""
        from agent.sources import DISCORD_FILE_HOSTS, DownloadHosts, SourceOpeners, http_opener

        sources = SourceOpeners()
        # `http` locators are Discord attachments: its CDN, or the configured API host.
        hosts = DownloadHosts(DISCORD_FILE_HOSTS, api_bases=[self.settings.discord_api_base])
        sources.register("http", http_opener(hosts))
        return sources

    # --- shared objects -------------------------------------------------------------
    @cached_property
    def config(self) -> AgentConfig:
        from agent.context import AgentConfig

        settings = self.settings
        return AgentConfig(
            public_base_url=settings.public_base_url,
            call_deadline_seconds=settings.http_call_deadline_seconds,
            media_url_ttl_seconds=settings.media_url_ttl_seconds,
            signin_frontends=settings.signin_frontends,
            schedule_max_days=settings.schedule_max_days,
        )

    @cached_property
    def ops(self) -> PlatformOps:
        """Linking, uploads and metrics; first used after initialize() (the pool is open)."""
        from agent.ops import PlatformOps

        services = self.services
        return PlatformOps(
            pool=services.db.pool,
            cipher=services.cipher,
            platforms=services.platforms,
            budgets=services.budgets,
            config=self.config,
            source_opener=self.sources.open,
        )

    @cached_property
    def admins(self) -> Admins:
        """Who administers a workspace, by front-end (the companion API's audit)."""
        admins = Admins()
        admins.register("local", local_operator)
        token = self.settings.discord_token
        if token is not None:
            import httpx

            http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
            self.services.http_clients["discord-admins"] = http  # closed with the others
            discord = DiscordAdmins(
                http=http, api_base=self.settings.discord_api_base, token=token.get_secret_value()
            )
            admins.register("discord", discord.is_admin)
        return admins

    @cached_property
    def deps(self) -> Deps:
        """Actions' dependencies; first used after initialize() (the pool must be open)."""
        from agent.actions import EXECUTORS
        from agent.context import Deps

        services = self.services
        return Deps(
            pool=services.db.pool,
            redis=services.redis,
            cipher=services.cipher,
            config=self.config,
            platforms=services.platforms,
            budgets=services.budgets,
            ops=self.ops,
            executors=EXECUTORS,
            notify=services.notifiers.notify,
            commentary=self._digest_commentary(),
            chat_profile=self.chat_profiles.lookup,
            is_admin=self.admins.is_admin,
        )

    def _digest_commentary(self) -> Commentary | None:
        """A model's words on each digest's numbers, where a model is configured."""
        if not self.settings.llm_enabled:
            return None
        from agent.digest_insights import ModelCommentary

        def build() -> BaseChatModel:
            from agent.observe import observed
            from agent.runner import build_model

            config = self._runner_config()
            return observed(build_model(config), name=config.model, purpose="digest")

        return ModelCommentary(build)

    def _runner_config(self) -> RunnerConfig:
        from agent.runner import RunnerConfig

        settings = self.settings
        return RunnerConfig(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            max_model_calls=settings.llm_max_model_calls,
            max_tool_calls=settings.llm_max_tool_calls,
            max_output_tokens=settings.llm_max_output_tokens,
            timeout_seconds=settings.llm_request_timeout_seconds,
            max_input_tokens=settings.llm_max_input_tokens,
            max_history_tokens=settings.llm_max_history_tokens,
        )

    @cached_property
    def chat_profiles(self) -> ChatProfiles:
        """Each front-end's lookup of a user's time zone and role (scheduled posts)."""
        from bot.chat_profiles import ChatProfiles

        return ChatProfiles()

    @cached_property
    def chatops(self) -> ChatOpsService:
        """The conversation core: grammar always, the agent when a model is configured
        (LangChain is imported only then: about 0.7 s and 55 MiB)."""
        from agent.summaries import SummaryConfig
        from bot.core.service import ChatOpsService

        settings = self.settings
        runner = None
        summary_model = None
        if settings.llm_enabled:
            from agent.observe import observed
            from agent.runner import AgentRunner, build_model

            config = self._runner_config()
            model = build_model(config)  # one client: the runner counts its own copy
            runner = AgentRunner(model=model, config=config)
            summary_model = observed(model, name=config.model, purpose="summary")
        summary = SummaryConfig(
            tokens=settings.llm_summary_tokens,
            batch=settings.llm_summary_batch,
            timeout_seconds=settings.llm_summary_timeout_seconds,
        )
        return ChatOpsService(
            deps=lambda: self.deps,
            runner=runner,
            history_turns=settings.llm_history_turns,
            summary=summary,
            summary_model=summary_model,
        )

    @cached_property
    def slack(self) -> SlackAdapter | None:
        """The Slack adapter when Slack is configured (shared by web and socket parts)."""
        if not self.settings.slack_enabled:
            return None
        from bot.slack import build_slack_adapter

        adapter = build_slack_adapter(self.services, handler=self.chatops)
        self.services.notifiers.register("slack", adapter.notify)
        self.chat_profiles.register("slack", adapter.chat_profile)
        self.admins.register("slack", adapter.is_admin)
        self.sources.register("slack", lambda loc: StreamedSource(adapter.files.stream, loc))
        return adapter

    @cached_property
    def signins(self) -> dict[str, SignIn]:
        """The chat sign-ins that prove who opens an account link, for each configured one."""
        import httpx

        from bot.signin import DiscordSignIn, SlackSignIn

        settings = self.settings
        if not settings.signin_frontends:
            return {}
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
        self.services.http_clients["chat-signin"] = http  # closed with the others at shutdown
        built: dict[str, SignIn] = {}
        # The same conditions as Settings.signin_frontends (written out for the types).
        if settings.slack_client_id is not None and settings.slack_client_secret is not None:
            built["slack"] = SlackSignIn(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                authorize_url=settings.slack_openid_authorize_url,
                api_base=settings.slack_api_base,
                public_base_url=settings.public_base_url,
                http=http,
            )
        if settings.discord_client_id is not None and settings.discord_client_secret is not None:
            built["discord"] = DiscordSignIn(
                client_id=settings.discord_client_id,
                client_secret=settings.discord_client_secret.get_secret_value(),
                authorize_url=settings.discord_oauth_authorize_url,
                api_base=settings.discord_api_base,
                public_base_url=settings.public_base_url,
                http=http,
            )
        return built

    def streamed_paths(self) -> frozenset[str]:
        """The web routes that read and cap their own request body (see bot.web.BodyLimit)."""
        if self.settings.supabase_url is None:
            return frozenset()
        from bot.api import STREAMED_PATHS

        return STREAMED_PATHS

    def web_routers(self) -> list[APIRouter]:
        from bot.oauth_web import build_oauth_router

        services = self.services
        routers = [
            build_oauth_router(
                linking=lambda: self.ops,
                platforms=services.platforms,
                notifiers=services.notifiers,
                public_base_url=self.settings.public_base_url,
                signins=self.signins,
            )
        ]
        if (slack := self._slack_over_http()) is not None:
            routers.append(slack.router())
        routers.append(self._media_router())
        if self.settings.metrics_token is not None:
            from bot.metrics_web import build_metrics_router, refresher

            routers.append(
                build_metrics_router(
                    token=self.settings.metrics_token.get_secret_value(),
                    refresh=refresher(services.budgets),
                )
            )
        if self.settings.supabase_url is not None:
            routers.append(self._api_router(self.settings.supabase_url))
        return routers

    def web_endpoints(self) -> dict[str, ASGIApp]:
        """Exact paths served ahead of the app (bot.web.ExactPaths): Slack's events."""
        slack = self._slack_over_http()
        return slack.endpoints() if slack is not None else {}

    def _slack_over_http(self) -> SlackAdapter | None:
        """The Slack adapter when it takes HTTP requests (a signing secret is set)."""
        return self.slack if self.settings.slack_signing_secret is not None else None

    def _api_router(self, supabase_url: str) -> APIRouter:
        """/api/v1: the companion app, as the chat user each Supabase user connected."""
        import httpx

        from bot.api import build_api_router

        secret = self.settings.supabase_jwt_secret
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
        self.services.http_clients["supabase-jwks"] = http  # closed with the others
        return build_api_router(
            deps=lambda: self.deps,
            supabase_url=supabase_url,
            jwt_secret=secret.get_secret_value() if secret else None,
            http=http,
            upload_store=self.upload_store,
        )

    @cached_property
    def upload_store(self) -> UploadStore:
        """Where files sent to POST /api/v1/uploads are written (and swept from)."""
        from bot.api.uploads import UploadStore

        return UploadStore(
            directory=self.settings.data_dir / "uploads",
            max_bytes=self.settings.api_upload_max_bytes,
        )

    def _media_router(self) -> APIRouter:
        """/media/{token}: videos that platforms fetch by URL (Instagram), signed per post."""
        from agent.media_links import MediaLinks
        from bot.media_web import build_media_router

        services = self.services
        _ = self.slack  # registers the "slack" source opener when Slack is configured
        links = MediaLinks(
            cipher=services.cipher,
            public_base_url=self.settings.public_base_url,
            ttl_seconds=self.settings.media_url_ttl_seconds,
        )
        return build_media_router(
            pool=lambda: services.db.pool, links=links, opener=self.sources.open
        )

    # --- parts ----------------------------------------------------------------------
    def build_part(self, name: str) -> Part:
        settings = self.settings
        if name == "web":
            from bot.web import WebPart, create_app

            web = WebPart(
                create_app(
                    self.services,
                    routers=self.web_routers(),
                    endpoints=self.web_endpoints(),
                    streamed=self.streamed_paths(),
                ),
                host=settings.host,
                port=settings.port,
            )
            if self.slack is not None:
                from bot.slack.socket import DrainingWebPart

                return DrainingWebPart(web=web, adapter=self.slack)
            return web
        if name == "worker":
            return self._worker()
        if name == "metrics":
            return self._metrics()
        if name == "shell":
            from bot.shell import ShellPart

            shell = ShellPart(self.chatops)
            self.services.notifiers.register("local", shell.notify)
            return shell
        if name == "discord":
            if settings.discord_token is None:
                raise PartUnavailable("Discord is off: set DISCORD_TOKEN to run the 'discord' part")
            from bot.discord import DiscordPart
            from bot.discord.shards import ShardLease, ShardPlan

            try:
                shards = ShardPlan.parse(settings.discord_shard_count, settings.discord_shard_ids)
            except ValueError as exc:
                raise PartUnavailable(f"Discord sharding: {exc}") from None
            part = DiscordPart(
                token=settings.discord_token.get_secret_value(),
                handler=self.chatops,
                api_base=settings.discord_api_base,
                shards=shards,
                lease=ShardLease(pool=lambda: self.services.db.pool, plan=shards),
            )
            self.services.notifiers.register("discord", part.notify)
            return part
        if name == "slack-socket":
            if self.slack is None or settings.slack_app_token is None:
                raise PartUnavailable("Slack Socket Mode needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN")
            from bot.slack.socket import SlackSocketPart

            return SlackSocketPart(
                adapter=self.slack, app_token=settings.slack_app_token.get_secret_value()
            )
        raise PartUnavailable(f"the '{name}' part is not available in this build")

    def _metrics(self) -> Part:
        """`/metrics` on METRICS_PORT, for a process with no web server (bot.metrics_web)."""
        from bot.metrics_web import metrics_app, refresher
        from bot.web import WebPart

        settings = self.settings
        if settings.metrics_port is None:
            raise PartUnavailable("the 'metrics' part needs METRICS_PORT")
        token = settings.metrics_token
        app = metrics_app(
            host=settings.metrics_host,
            token=token.get_secret_value() if token is not None else None,
            refresh=refresher(self.services.budgets),
        )
        return WebPart(app, host=settings.metrics_host, port=settings.metrics_port, name="metrics")

    def _worker(self) -> Part:
        from bot.worker import JobKind, Trigger, WorkerPart
        from storage import queue

        settings = self.settings
        # Built now, not on first use: it registers the `slack` source opener, which a
        # worker-only process needs to run an upload whose bytes come from Slack.
        _ = self.slack
        kinds = {
            queue.UPLOAD: JobKind(self.upload_job),
            # Deliveries run in parallel, bounded across the whole deployment.
            queue.DIGEST: JobKind(self.digest_job, concurrency=settings.digest_concurrency),
            queue.REFRESH: JobKind(self._refresh_job),
            queue.PURGE: JobKind(self._purge_job),
        }
        triggers = [
            # The engine's scheduler: cron rows in Postgres, each tick fired on one replica;
            # the enqueue keys would make a second firing harmless anyway.
            Trigger("digests", "* * * * *", self.enqueue_digests),
            Trigger("purge-expired", "*/10 * * * *", self._enqueue_purge),
        ]
        if self.services.platforms.configured():
            # Long-lived tokens (Instagram) are renewed before they lapse.
            triggers.append(Trigger("refresh-tokens", "7 * * * *", self._enqueue_refreshes))
        return WorkerPart(
            pool=lambda: self.services.db.pool,
            kinds=kinds,
            triggers=triggers,
            max_concurrent=settings.worker_concurrency,
            heartbeat_seconds=settings.job_heartbeat_seconds,
            transaction_pooler=self.services.db.transaction_pooler,
            direct_dsn=(
                settings.database_direct_url.get_secret_value()
                if settings.database_direct_url is not None
                else None
            ),
        )

    @cached_property
    def job_board(self) -> JobBoard:
        """Where workers post and edit jobs' status messages."""
        from bot.job_board import JobBoard

        settings = self.settings
        return JobBoard(
            slack=self.slack,
            notifiers=self.services.notifiers,
            discord_token=(
                settings.discord_token.get_secret_value() if settings.discord_token else None
            ),
            discord_api_base=settings.discord_api_base,
        )

    async def upload_job(self, payload: dict[str, Any]) -> None:
        """Run (or resume) one upload job: the upload job's handler."""
        from agent.jobs.upload import DueRules, run_upload_job

        await run_upload_job(
            self.services.db.pool,
            self.ops,
            self.job_board,
            int(payload["run"]),
            deferred=bool(payload.get("deferred")),
            due=DueRules(
                grace=timedelta(seconds=self.settings.schedule_grace_seconds),
                notify=self.services.notifiers.notify,
            ),
        )

    async def enqueue_digests(self, now: datetime | None = None) -> int:
        """Queue a delivery job for every digest that is due (once per local day)."""
        from agent.digests import enqueue_due_digests

        return await enqueue_due_digests(self.deps, now or datetime.now(UTC))

    async def digest_job(self, payload: dict[str, Any]) -> None:
        """Deliver one digest (subscription, local date): the digest job's handler.

        At most DIGEST_PER_WORKSPACE run at once per workspace, and each message waits
        for its channel's posting rate (see bot.digest_post)."""
        from agent.digests import deliver_digest, requeue_digest
        from bot.digest_post import ChannelPacer, DigestPoster, WorkspaceBusy, workspace_slot
        from storage import digests

        settings = self.settings
        budgets = self.services.budgets
        poster = DigestPoster(
            slack=self.slack,
            notifiers=self.services.notifiers,
            discord_token=(
                settings.discord_token.get_secret_value() if settings.discord_token else None
            ),
            discord_api_base=settings.discord_api_base,
            pacer=ChannelPacer(budgets),
        )
        subscription_id = int(payload["sub"])
        workspace_id = payload.get("workspace")
        if workspace_id is None:  # queued before jobs named their workspace
            sub = await digests.get_subscription(self.services.db.pool, subscription_id)
            if sub is None:
                return
            workspace_id = sub.workspace_id
        try:
            async with workspace_slot(
                budgets, int(workspace_id), limit=settings.digest_per_workspace
            ):
                await deliver_digest(
                    self.deps,
                    poster,
                    subscription_id=subscription_id,
                    local_date=date.fromisoformat(str(payload["date"])),
                    now=datetime.now(UTC),
                )
        except WorkspaceBusy as busy:  # no failure: a fresh job tries again in a moment
            await requeue_digest(self.services.db.pool, payload, delay=busy.delay)

    async def _enqueue_refreshes(self) -> int:
        from storage import queue

        due = await self.ops.credentials.expiring()
        async with self.services.db.pool.acquire() as conn:
            return await queue.enqueue_many(
                conn, queue.REFRESH, [({"account": a}, f"refresh:{a}") for a in due]
            )

    async def _refresh_job(self, payload: dict[str, Any]) -> None:
        await self.ops.credentials.refresh_account(int(payload["account"]))

    async def _enqueue_purge(self) -> None:
        from storage import queue

        async with self.services.db.pool.acquire() as conn:
            await queue.enqueue(conn, queue.PURGE, {}, dedupe_key="purge")

    async def _purge_job(self, payload: dict[str, Any]) -> None:
        from storage import app_identities, audit, job_runs, oauth_states, pending_links

        pool = self.services.db.pool
        await oauth_states.purge_expired(pool)
        await pending_links.purge_expired(pool)
        await app_identities.purge_expired(pool)
        await job_runs.purge_ended(pool)
        await audit.purge_older_than(pool, days=self.settings.audit_retention_days)
        await self._sweep_uploads()

    async def _sweep_uploads(self) -> None:
        """Remove files received by the API that no approval or unfinished post needs."""
        from storage import upload_files

        store = self.upload_store
        in_use = await upload_files.paths_in_use(self.services.db.pool, under=str(store.directory))
        removed = await store.sweep(in_use, older_than=UPLOAD_FILE_MIN_AGE_SECONDS)
        if removed:
            log.info("removed received upload files", extra={"count": removed})


class CorePart:
    """Started first and so stopped last: lets conversation work finish before pools close."""

    name = "core"

    def __init__(self, assembly: Assembly) -> None:
        self._assembly = assembly
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        return None

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self, grace: float) -> None:
        if "chatops" in self._assembly.__dict__:  # only if some part built it
            await self._assembly.chatops.drain(grace)
        # Every other part has stopped: close the Slack clients whoever opened them
        # (a worker posting digests has no Slack part to do it; aclose is idempotent).
        slack = self._assembly.__dict__.get("slack")
        if slack is not None:
            await slack.aclose(grace)
        self._stopped.set()


class StreamedSource:
    """A ByteSource over a front-end's streaming download (no Range support assumed).

    Resuming from an offset re-reads and discards the bytes before it: slower
    than a ranged request, but correct for any HTTP server.
    """

    def __init__(self, stream: Any, locator: Mapping[str, Any]) -> None:
        self._stream = stream
        self._locator = dict(locator)
        self.size = int(locator.get("size") or 0)
        self.mime_type = str(locator.get("mime_type") or "application/octet-stream")

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        skip = offset
        async for chunk in self._stream(self._locator):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:] if skip else chunk
            skip = 0


def build_parts(services: Services, names: list[str]) -> list[Part]:
    """The named parts, sharing one Assembly, with the core part first (stopped last)."""
    assembly = Assembly(services)
    return [CorePart(assembly), *(assembly.build_part(name) for name in names)]


def build_part(services: Services, name: str) -> Part:
    """One part on its own Assembly (tests and tools that need a single part)."""
    return Assembly(services).build_part(name)
