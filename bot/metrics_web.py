"""`GET /metrics`: Prometheus text for the operator, behind a bearer token.

Off (404) unless METRICS_TOKEN is set: the figures say which platforms are failing and
how busy the bot is, which is nobody else's business. Label values are bounded
(platforms, outcomes): never a user, a workspace or a post.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

REDIS_FALLBACK = Gauge(
    "socialops_redis_fallback",
    "1 while Redis is unreachable and chat limits run on this process's own limiter.",
)


def build_metrics_router(*, token: str, redis_down: Callable[[], bool]) -> APIRouter:
    """The route; `redis_down` is read at each scrape."""
    router = APIRouter()
    expected = f"Bearer {token}".encode()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        REDIS_FALLBACK.set(1 if redis_down() else 0)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
