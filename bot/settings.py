"""Settings: the one place that reads the environment (and an optional `.env`).

Every other module receives what it needs as explicit arguments, built in
`bot.services` from one `Settings` object. Secrets are `SecretStr`, so a repr,
a log line or `socialops doctor` never shows their value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from integrations.registry import PLUGINS

# Each registered platform declares its own settings model (GOOGLE_*, INSTAGRAM_*, ...);
# Settings inherits their fields, so they are read here like every other variable.
PLATFORM_SETTINGS = tuple(plugin.settings_type for plugin in PLUGINS)


class Settings(BaseSettings, *PLATFORM_SETTINGS):  # type: ignore[misc]
    """Process configuration, read from environment variables with conventional names.

    The core, chat and model settings are below; each platform's come from its
    plug-in (`integrations/<platform>/plugin.py`).
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- core -------------------------------------------------------------------------
    database_url: SecretStr | None = None
    # Session-mode URL (Supabase: port 5432) for what needs a session (migrations), when
    # DATABASE_URL goes through a transaction pooler (Supavisor, port 6543).
    database_direct_url: SecretStr | None = None
    # `auto`: a transaction pooler when DATABASE_URL's port is 6543 or it has ?pgbouncer=true.
    database_pooler: Literal["auto", "session", "transaction"] = "auto"
    # The most Postgres connections this process opens; set per role (web, worker,
    # discord) so that all replicas together stay within the database's client limit.
    database_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: SecretStr | None = None
    socialops_data_dir: Path = Path(".socialops")
    public_base_url: str = "http://localhost:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    run_migrations_on_start: bool = True
    redis_key_prefix: str = "socialops:"
    shutdown_grace_seconds: float = 20.0
    # Background jobs (bot.worker): how many one worker runs at once; how stale a
    # job's heartbeat may get before another worker takes it over (a dead worker's
    # job resumes within about this long); digest deliveries at once, deployment-wide,
    # and at once per workspace (so one big workspace never holds every delivery slot).
    worker_concurrency: int = Field(default=20, ge=2)
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    digest_concurrency: int = Field(default=16, ge=1)
    # Scheduled posts: how far ahead they may be set; how late a worker may still publish
    # one (a worker down at the time); later than that, the requester is asked instead.
    schedule_max_days: int = Field(default=90, ge=1, le=3650)
    schedule_grace_seconds: int = Field(default=900, ge=0)
    digest_per_workspace: int = Field(default=4, ge=1)
    # Audit log entries older than this are purged by the job engine's purge job.
    audit_retention_days: int = Field(default=365, ge=1, le=3650)
    # Lifetime of signed PUBLIC_BASE_URL/media/{token} links (videos Instagram fetches).
    media_url_ttl_seconds: int = Field(default=7200, ge=60, le=7 * 24 * 3600)
    # Level of the libraries that log whole payloads (slack_sdk, slack_bolt, discord, openai)
    # and of the noisy ones; unset keeps them at INFO/WARNING even when LOG_LEVEL=DEBUG.
    log_level_libraries: str | None = None

    # Bearer token for GET /metrics (Prometheus); the web role's route is off without it.
    metrics_token: SecretStr | None = None
    # Roles with no web server (worker, discord, slack-socket) serve /metrics on this port,
    # bound to METRICS_HOST; off a loopback address METRICS_TOKEN is required.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    # --- tracing (OpenTelemetry; off unless an OTLP endpoint is set) -------------------
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    # `key=value,...` request headers for the collector (often an API key: a secret).
    otel_exporter_otlp_headers: SecretStr | None = None
    otel_service_name: str = "socialops"
    otel_sdk_disabled: bool = False
    otel_traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = "parentbased_always_on"
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0.0, le=1.0)

    # --- secrets at rest --------------------------------------------------------------
    token_encryption_keys: SecretStr | None = None

    # --- model ------------------------------------------------------------------------
    llm_model: str = "openai:gpt-4.1-mini"
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_max_model_calls: int = 8
    llm_max_tool_calls: int = 8
    llm_max_output_tokens: int = 1024
    llm_history_turns: int = 12
    llm_max_input_tokens: int = 4000
    llm_max_history_tokens: int = 6000
    # A thread's turns older than its history window: a summary of this many tokens,
    # rewritten by the model (with a model) each time this many messages have left the
    # window, within this many seconds; else, and as the fallback, the oldest turns cut.
    llm_summary_tokens: int = Field(default=700, ge=1)
    llm_summary_batch: int = Field(default=8, ge=1)
    llm_summary_timeout_seconds: float = Field(default=30.0, gt=0)
    llm_request_timeout_seconds: float = 60.0

    # --- Slack ------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_base: str = "https://slack.com/api/"
    # Sign in with Slack (uses SLACK_CLIENT_ID / SLACK_CLIENT_SECRET): proves who opens a link.
    slack_openid_authorize_url: str = "https://slack.com/openid/connect/authorize"
    # Follow-up work (conversations, approvals) running at once per process; past it,
    # people are asked to try again in a minute, so acks never queue behind work.
    slack_max_in_flight: int = Field(default=100, ge=1)

    # --- Discord ----------------------------------------------------------------------
    discord_token: SecretStr | None = None
    discord_api_base: str = "https://discord.com/api/v10"
    # Sharding: several `discord` processes split the guilds, each running DISCORD_SHARD_IDS
    # ("0,1"; default: all) of DISCORD_SHARD_COUNT (unset: one process, every shard).
    # A lease in Postgres keeps each shard in one process at a time (bot/discord/shards.py).
    discord_shard_count: int | None = Field(default=None, ge=1)
    discord_shard_ids: str | None = None
    # Discord OAuth2 (`identify`), to prove who opens an account link asked for on Discord.
    discord_client_id: str | None = None
    discord_client_secret: SecretStr | None = None
    discord_oauth_authorize_url: str = "https://discord.com/oauth2/authorize"

    # --- companion app API (/api/v1, Supabase auth; off without SUPABASE_URL) -----------
    supabase_url: str | None = None
    # The legacy HS256 shared secret, for projects that still sign tokens with it.
    supabase_jwt_secret: SecretStr | None = None
    # The largest video the app may send in a POST /api/v1/uploads request (413 past it);
    # it is written under SOCIALOPS_DATA_DIR/uploads, which the worker role must share.
    api_upload_max_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)

    # --- rate limits ------------------------------------------------------------------
    limit_user_messages: str = "20/minute"
    limit_workspace_messages: str = "300/minute"
    limit_user_llm_tokens_per_day: int = 200_000
    limit_workspace_llm_tokens_per_day: int = 2_000_000
    # How long one limiter call to Redis may take before Redis counts as down (chat limits
    # then fall back to this process, quotas refuse). Raise it for a distant Redis. A stall
    # of this process's event loop does not count (storage.ratelimit.deadline).
    limit_call_timeout_seconds: float = Field(default=0.5, gt=0)
    http_max_concurrency_per_platform: int = 8
    http_breaker_failure_threshold: int = 5
    http_breaker_cooldown_seconds: float = 30.0
    http_call_deadline_seconds: float = 20.0

    # --- derived ----------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The data directory, created on first use (embedded servers, generated key)."""
        path = self.socialops_data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def slack_enabled(self) -> bool:
        """Slack runs with a bot token (one workspace) or client credentials (installs)."""
        return (
            self.slack_signing_secret is not None
            and (
                self.slack_bot_token is not None
                or (self.slack_client_id is not None and self.slack_client_secret is not None)
            )
        ) or (self.slack_app_token is not None and self.slack_bot_token is not None)

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None

    @property
    def signin_frontends(self) -> frozenset[str]:
        """Front-ends whose chat sign-in is configured, so their account links are checked
        against who signs in (elsewhere a link waits for a code typed in chat)."""
        configured = {
            "slack": self.slack_client_id is not None and self.slack_client_secret is not None,
            "discord": self.discord_client_id is not None
            and self.discord_client_secret is not None,
        }
        return frozenset(name for name, on in configured.items() if on)

    @property
    def llm_enabled(self) -> bool:
        """A model is usable with an API key, or with a base URL (local servers need none)."""
        return self.llm_api_key is not None or self.llm_base_url is not None

    def secret_values(self) -> list[str]:
        """Every configured secret's plain value, for the log redaction filter."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                if name in {"database_url", "database_direct_url", "redis_url"}:
                    raw = _url_password(raw) or ""
                if len(raw) >= 6:
                    values.append(raw)
        if self.token_encryption_keys is not None:
            for item in self.token_encryption_keys.get_secret_value().split(","):
                _, _, key = item.strip().partition(":")
                if len(key) >= 6:
                    values.append(key)
        return values


def _url_password(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None
