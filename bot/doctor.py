"""`socialops doctor`: what is configured, what each feature still needs, and connectivity.

It prints names and public values (URLs, ids) only; a secret is shown as
"set" or "missing", never its value.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from agent.media_links import is_public_base_url
from bot.settings import Settings
from integrations.registry import Registry
from storage.db import asyncpg_dsn, is_transaction_pooler

FEATURES: dict[str, list[list[str]]] = {
    # feature -> alternatives, each a list of settings that together enable it
    "Slack": [
        ["slack_bot_token", "slack_signing_secret"],
        ["slack_client_id", "slack_client_secret", "slack_signing_secret"],
        ["slack_bot_token", "slack_app_token"],
    ],
    "Discord": [["discord_token"]],
    # Without these, account links asked for in that chat wait for a code typed in chat.
    "Sign in with Slack (account links)": [["slack_client_id", "slack_client_secret"]],
    "Sign in with Discord (account links)": [["discord_client_id", "discord_client_secret"]],
    "LLM (free-form chat)": [["llm_api_key"], ["llm_base_url"]],
    # Tokens are checked against the project's JWKS; add SUPABASE_JWT_SECRET for HS256 ones.
    "Companion app API (/api/v1)": [["supabase_url"]],
    "Prometheus /metrics on the web role": [["metrics_token"]],
    "/metrics on METRICS_PORT (worker, discord)": [["metrics_port"]],
    "Tracing (OpenTelemetry over OTLP)": [
        ["otel_exporter_otlp_endpoint"],
        ["otel_exporter_otlp_traces_endpoint"],
    ],
}


def _features(registry: Registry) -> dict[str, list[list[str]]]:
    """The chat and model features, then one per registered platform (from its plug-in)."""
    platforms = {p.display_name: [list(alt) for alt in p.required] for p in registry.plugins}
    return {**FEATURES, **platforms}


def _is_set(settings: Settings, name: str) -> bool:
    return getattr(settings, name) is not None


def _safe_url(url: str) -> str:
    """A URL with its passwords masked: the userinfo one and any `?password=`-like parameter.

    libpq and redis-py both accept the password as a query parameter, so masking only
    the userinfo part would still print it.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL, not shown)"
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = "&".join(
        f"{pair.partition('=')[0]}=***"
        if any(word in pair.partition("=")[0].lower() for word in ("pass", "secret", "token"))
        else pair
        for pair in parts.query.split("&")
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def connection_budget(settings: Settings, *, web: int, workers: int) -> str:
    """How many Postgres connections `web` + `workers` processes at this pool size open."""
    each = settings.database_pool_size
    total = (web + workers) * each
    direct = ""
    if settings.database_direct_url is not None:
        pooled = settings.database_url is not None and is_transaction_pooler(
            settings.database_url.get_secret_value(), settings.database_pooler
        )
        listeners = f"+{workers} for the workers' LISTEN, " if pooled else ""
        direct = f" ({listeners}+1 each while migrating, on DATABASE_DIRECT_URL)"
    return (
        f"Postgres connections: {web} web + {workers} worker process(es) x DATABASE_POOL_SIZE "
        f"{each} = up to {total}{direct}; keep it within the database's (or pooler's) client "
        "limit, setting DATABASE_POOL_SIZE per role."
    )


def _discord_shards(settings: Settings) -> str:
    from bot.discord.shards import ShardPlan  # imported only when Discord is configured

    try:
        plan = ShardPlan.parse(settings.discord_shard_count, settings.discord_shard_ids)
    except ValueError as exc:
        return f"the 'discord' part will not start: {exc}"
    return f"this process runs {plan.describe()} (one lease per shard in Postgres)"


def report_lines(settings: Settings, registry: Registry | None = None) -> list[str]:
    """The configuration part of the report (no I/O)."""
    registry = registry or Registry()
    lines = ["Features:"]
    for feature, alternatives in _features(registry).items():
        on = any(all(_is_set(settings, n) for n in alt) for alt in alternatives)
        if on:
            lines.append(f"  [on]  {feature}")
        else:
            best = min(alternatives, key=lambda alt: sum(not _is_set(settings, n) for n in alt))
            missing = ", ".join(n.upper() for n in best if not _is_set(settings, n))
            lines.append(f"  [off] {feature}: set {missing}")
    lines.append("Settings:")
    for name in sorted(type(settings).model_fields):
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = "set (hidden)"
        elif value is None:
            shown = "-"
        else:
            shown = str(value)
        lines.append(f"  {name.upper()} = {shown}")
    if settings.token_encryption_keys is None:
        lines.append("Warning: TOKEN_ENCRYPTION_KEYS is not set; a local key file is used.")
    if settings.database_url is not None and is_transaction_pooler(
        settings.database_url.get_secret_value(), settings.database_pooler
    ):
        lines.append(
            "Postgres: DATABASE_URL is a transaction pooler (prepared-statement cache off); "
            + (
                "migrations use DATABASE_DIRECT_URL, and so does the worker's LISTEN for jobs."
                if settings.database_direct_url is not None
                else "set DATABASE_DIRECT_URL (session mode, port 5432) for migrations; "
                "without it the worker polls for jobs instead of LISTENing."
            )
        )
    if settings.discord_token is not None:
        lines.append(f"Discord: {_discord_shards(settings)}")
    public = is_public_base_url(settings.public_base_url)
    for plugin in registry.plugins:
        own = plugin.settings_from(settings)
        caps = plugin.capabilities(own)
        if plugin.enabled(own) and caps.media == "public_url" and not public:
            lines.append(
                f"Warning: PUBLIC_BASE_URL is not reachable from the internet; "
                f"{caps.display_name} cannot fetch videos from /media/. Set it to this "
                "server's public https address."
            )
    return lines


async def _check_postgres(settings: Settings) -> str:
    import asyncpg

    if settings.database_url is None:
        return "embedded (starts with the app)"
    url = settings.database_url.get_secret_value()
    try:
        started = time.perf_counter()
        conn = await asyncio.wait_for(
            asyncpg.connect(asyncpg_dsn(url), statement_cache_size=0), timeout=5
        )
        version = await conn.fetchval("SHOW server_version")
        await conn.close()
        return f"ok ({_safe_url(url)}, PostgreSQL {version}, {1000 * (time.perf_counter() - started):.0f} ms)"
    except Exception as exc:
        return f"FAILED ({_safe_url(url)}: {type(exc).__name__})"


async def _check_redis(settings: Settings) -> str:
    import redis.asyncio as aioredis

    if settings.redis_url is None:
        return "embedded (starts with the app)"
    url = settings.redis_url.get_secret_value()
    client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        started = time.perf_counter()
        await client.ping()
        return f"ok ({_safe_url(url)}, {1000 * (time.perf_counter() - started):.0f} ms)"
    except Exception as exc:
        return f"FAILED ({_safe_url(url)}: {type(exc).__name__})"
    finally:
        await client.aclose()


async def doctor(settings: Settings, *, web: int = 1, workers: int = 1) -> int:
    """Print the report; exit 1 if a configured server is unreachable."""
    lines = [*report_lines(settings), connection_budget(settings, web=web, workers=workers)]
    pg, rd = await asyncio.gather(_check_postgres(settings), _check_redis(settings))
    lines += ["Connectivity:", f"  Postgres: {pg}", f"  Redis: {rd}"]
    print("\n".join(lines))
    return 1 if "FAILED" in pg or "FAILED" in rd else 0
