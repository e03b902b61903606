"""The ASGI app (FastAPI) and the part that serves it.

Routes: health and readiness here; OAuth start/callback and Slack endpoints are
mounted by their own modules through `create_app`'s routers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from bot.services import Services

log = logging.getLogger(__name__)


def create_app(services: Services, *, routers: list[APIRouter] | None = None) -> FastAPI:
    """Build the app; lifecycle stays with the process runner, not with ASGI lifespan."""
    app = FastAPI(title="socialops", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services

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
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process runner owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebPart:
    """Serves the ASGI app with uvicorn until stopped."""

    name = "web"

    def __init__(self, app: FastAPI, *, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
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
