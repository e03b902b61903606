"""The Slack adapter's bolt app and Web API clients: the one module that imports bolt,
slack_sdk's async clients and aiohttp.

They are ~16 MiB resident and ~0.25 s of imports (bench/idle.py), which a web process
serving no Slack request yet has no use for: `bot.slack.adapter` signs, acks and
schedules slash commands without them, and imports this module on the first Slack
work that needs bolt or the Web API (`SlackAdapter.bolt()`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.installation import PostgresInstallationStore, PostgresOAuthStateStore
from storage.slack_installations import SlackInstallations

if TYPE_CHECKING:
    from bot.slack.adapter import SlackConfig

log = logging.getLogger(__name__)


class _UnusedTokenNote(logging.Filter):
    """Drops bolt's "`token` will be unused" warning: bolt reads SLACK_BOT_TOKEN from the
    environment even when given a client, and our client already carries that token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt")
    if not any(isinstance(f, _UnusedTokenNote) for f in logger.filters):
        logger.addFilter(_UnusedTokenNote())
    return logger


class SlackBolt:
    """bolt's `AsyncApp` (no listeners yet: the adapter registers its own), its request
    handler, the Web API client for the configured token, and the aiohttp session that
    every Web API client shares (bolt's per-request clients copy it from `web_client`)."""

    def __init__(
        self,
        *,
        config: SlackConfig,
        scopes: Sequence[str],
        installations: SlackInstallations | None,
        verify_requests: bool,
    ) -> None:
        self._config = config
        self._session: aiohttp.ClientSession | None = None
        self.web_client = self.client(config.bot_token)

        self.authorize: AsyncInstallationStoreAuthorize | None = None
        oauth_settings: AsyncOAuthSettings | None = None
        if config.multi_workspace:
            assert installations is not None
            store = PostgresInstallationStore(installations=installations)
            self.authorize = AsyncInstallationStoreAuthorize(
                logger=log,
                installation_store=store,
                client_id=config.client_id,
                client_secret=config.client_secret,
                bot_only=True,
                cache_enabled=True,
                client=self.web_client,  # token rotation talks to the configured API base
            )
            oauth_settings = AsyncOAuthSettings(
                client_id=config.client_id,
                client_secret=config.client_secret,
                scopes=list(scopes),
                redirect_uri=config.public_base_url.rstrip("/") + "/slack/oauth_redirect",
                install_page_rendering_enabled=False,
                installation_store=store,
                installation_store_bot_only=True,
                state_store=PostgresOAuthStateStore(installations=installations),
            )
        self.app = AsyncApp(
            client=self.web_client,
            signing_secret=config.signing_secret,
            request_verification_enabled=verify_requests,
            # bolt accepts an AsyncAuthorize instance here; its annotation says only callables.
            authorize=self.authorize,  # type: ignore[arg-type]
            oauth_settings=oauth_settings,
            installation_store_bot_only=True if config.multi_workspace else None,
            # Listeners here only schedule work (tracked by `_spawn`) and return, so
            # running them before the response costs nothing, and it spares bolt's
            # 10 ms ack polling; it also means a request's work is registered (and
            # drained on shutdown) by the time Slack has its 200.
            process_before_response=True,
            logger=_bolt_logger(),
        )
        self.requests = AsyncSlackRequestHandler(self.app)

    def client(self, token: str | None) -> AsyncWebClient:
        """A Web API client on the configured base URL that waits out 429s (Retry-After)."""
        return AsyncWebClient(
            token=token,
            base_url=self._config.api_base,
            session=self._session,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=self._config.rate_limit_retries),
            ],
        )

    @property
    def session(self) -> aiohttp.ClientSession | None:
        return self._session

    def open_session(self) -> None:
        """Open the shared session (again, after `close_session`); inside the event loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
            self.web_client.session = self._session

    async def close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            self.web_client.session = None
            await session.close()

    async def bot_token(
        self, team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool
    ) -> str | None:
        """The bot token installed in a workspace (multi-workspace mode), None if none."""
        assert self.authorize is not None
        context = AsyncBoltContext(
            {"client": self.web_client, "is_enterprise_install": is_enterprise_install}
        )
        result = await self.authorize(
            context=context, enterprise_id=enterprise_id, team_id=team_id, user_id=None
        )
        return result.bot_token if result is not None else None
