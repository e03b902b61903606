"""The ASGI app (FastAPI) and the part that serves it.

Routes: health and readiness here; OAuth start/callback and Slack endpoints are
mounted by their own modules through `create_app`'s routers and endpoints. Every
request body is capped (`BodyLimit`, or the endpoint's own `read_capped_body`)
before anything parses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.asgi import read_capped_body, replaying
from bot.services import Services
from bot.telemetry import instrument_app, instrument_endpoint

log = logging.getLogger(__name__)

# The app's routes (OAuth pages, health, media) take at most a small form or nothing at
# all; an endpoint served ahead of the app (see `ExactPaths`) caps its own body.
DEFAULT_BODY_LIMIT = 64 * 1024


class BodyLimit:
    """Pure ASGI middleware: a request body over its route's cap gets 413, read no further.

    A declared `Content-Length` over the cap is refused before a byte is read; otherwise
    the body is read here, counting as it streams (chunked bodies too), and handed to the
    app only once complete and within the cap. So no route ever buffers or parses more
    than its cap, and a huge body costs neither memory nor event-loop time. The paths in
    `streamed` are passed through untouched: their route streams its body to disk and
    enforces its own cap (the API's file uploads).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Mapping[str, int] | None = None,
        default: int = DEFAULT_BODY_LIMIT,
        streamed: frozenset[str] = frozenset(),
    ) -> None:
        self._app = app
        self._limits = dict(limits or {})
        self._default = default
        self._streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._streamed:
            await self._app(scope, receive, send)
            return
        body = await read_capped_body(
            scope, receive, send, cap=self._limits.get(scope["path"], self._default)
        )
        if body is not None:
            await self._app(scope, replaying(body, receive), send)


class ExactPaths:
    """Pure ASGI: requests to a few exact paths go straight to their own ASGI endpoint,
    everything else to `app`.

    Hand-written routing for endpoints on a latency budget (Slack's 3 s ack,
    bench/slack_ack.py): a signed slash command cost 57 us of CPU in the app as a route
    (FastAPI's middleware stack, routing, request objects, parsing the form on the ack's
    path) and costs 13.5 us as an endpoint here. Such an endpoint does itself what the
    stack did: cap its body (`read_capped_body`), answer 405 to other methods; it is
    traced like the app's routes (`bot.telemetry.instrument_endpoint`).
    """

    def __init__(self, app: ASGIApp, endpoints: Mapping[str, ASGIApp]) -> None:
        self._app = app
        self._endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoints.get(scope["path"]) if scope["type"] == "http" else None
        await (endpoint or self._app)(scope, receive, send)


def create_app(
    services: Services,
    *,
    routers: list[APIRouter] | None = None,
    endpoints: Mapping[str, ASGIApp] | None = None,
    streamed: frozenset[str] = frozenset(),
) -> ASGIApp:
    """Build the app; lifecycle stays with the process runner, not with ASGI lifespan.
    `endpoints`: exact paths served ahead of the app (see `ExactPaths`);
    `streamed`: paths whose route reads and caps its own body (see `BodyLimit`)."""
    app = FastAPI(title="socialops", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.add_middleware(BodyLimit, streamed=streamed)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await services.db.pool.fetchval("SELECT 1")
            checks["postgres"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["postgres"] = type(exc).__name__
        try:
            await services.redis.client.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = type(exc).__name__
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(checks, status_code=200 if ok else 503)

    for router in routers or []:
        app.include_router(router)
    instrument_app(app)
    if not endpoints:
        return app
    return ExactPaths(
        app, {path: instrument_endpoint(path, endpoint) for path, endpoint in endpoints.items()}
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process runner owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebPart:
    """Serves the ASGI app with uvicorn until stopped."""

    def __init__(self, app: ASGIApp, *, host: str, port: int, name: str = "web") -> None:
        self.name = name
        # ws="none": the app has no WebSocket route, and uvicorn's default ("auto") imports
        # the websockets library whenever it is installed (0.8 MiB resident; bench/idle.py).
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="uvicorn")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # surfaces a bind error
                raise RuntimeError("web server exited during startup")
            await asyncio.sleep(0.02)
        log.info(
            "web server listening",
            extra={"host": self._server.config.host, "port": self._server.config.port},
        )

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self, grace: float) -> None:
        if self._task is None:
            return
        self._server.config.timeout_graceful_shutdown = int(grace)
        self._server.should_exit = True
        await self._task
