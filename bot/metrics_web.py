"""`GET /metrics`: Prometheus text for the operator.

On the web role it is off (404) unless METRICS_TOKEN is set, and then needs it as a
bearer token: the figures say which platforms are failing and how busy the bot is,
which is nobody else's business. The roles with no web server (worker, discord,
slack-socket) serve the same page on METRICS_PORT (`metrics_app`): bound to
METRICS_HOST, 127.0.0.1 unless set, where a token is optional (only this machine's
scraper can reach it); on any other address METRICS_TOKEN is required.

A scrape refreshes the gauges read from elsewhere (Redis fallback, platform quotas
used and left). Label values are bounded (platforms, counters, outcomes): never a
user, a workspace or a post.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from storage.ratelimit import Budgets, LimiterUnavailable

log = logging.getLogger(__name__)

REDIS_FALLBACK = Gauge(
    "socialops_redis_fallback",
    "1 while Redis is unreachable and chat limits run on this process's own limiter.",
)
QUOTA_USED = Gauge(
    "socialops_quota_used",
    "A platform's per-app quota counter used in its current window (at scrape time).",
    ["platform", "counter"],
)
QUOTA_LEFT = Gauge(
    "socialops_quota_left",
    "A platform's per-app quota counter left in its current window (at scrape time).",
    ["platform", "counter"],
)

Refresh = Callable[[], Awaitable[None]]


def refresher(budgets: Budgets) -> Refresh:
    """What a scrape reads first: the limiter's Redis state and the platforms' quotas."""

    async def refresh() -> None:
        REDIS_FALLBACK.set(1 if budgets.redis_down else 0)
        try:
            rows = await budgets.report(workspace_id=0, chat_user_id=0)
        except LimiterUnavailable:
            return  # the fallback gauge says why; the quota gauges keep their last value
        for row in rows:
            if row.scope == "app" and row.platform is not None:
                QUOTA_USED.labels(row.platform, row.counter).set(row.used)
                QUOTA_LEFT.labels(row.platform, row.counter).set(row.remaining)

    return refresh


def build_metrics_router(*, token: str | None, refresh: Refresh) -> APIRouter:
    """The route; with `token` None it answers anyone (loopback-only servers)."""
    router = APIRouter()
    expected = f"Bearer {token}".encode() if token is not None else None

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await refresh()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_app(*, host: str, token: str | None, refresh: Refresh) -> FastAPI:
    """The METRICS_PORT server's app: `/metrics` and nothing else.

    Raises ValueError for a non-loopback `host` without a token (a public page).
    """
    if token is None and not is_loopback(host):
        raise ValueError(
            f"METRICS_HOST={host} is not a loopback address: set METRICS_TOKEN too, "
            "or leave METRICS_HOST at 127.0.0.1"
        )
    app = FastAPI(title="socialops metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(build_metrics_router(token=token, refresh=refresh))
    return app
