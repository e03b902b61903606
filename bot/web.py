"""The ASGI app (FastAPI) and the part that serves it.

Routes: health and readiness here; OAuth start/callback and Slack endpoints are
mounted by their own modules through `create_app`'s routers. Every request body
is capped (`BodyLimit`) before any route sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.services import Services
from bot.telemetry import instrument_app

log = logging.getLogger(__name__)

# Slack's event and interaction payloads stay well under 1 MiB; every other route
# (OAuth pages, health, media) takes at most a small form or nothing at all.
BODY_LIMITS: Mapping[str, int] = {"/slack/events": 1024 * 1024}
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
        limits: Mapping[str, int] = BODY_LIMITS,
        default: int = DEFAULT_BODY_LIMIT,
        streamed: frozenset[str] = frozenset(),
    ) -> None:
        self._app = app
        self._limits = dict(limits)
        self._default = default
        self._streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._streamed:
            await self._app(scope, receive, send)
            return
        cap = self._limits.get(scope["path"], self._default)
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared:
            if len(declared) > 1 or not declared[0].isdigit() or len(declared[0]) > 18:
                await _refuse(send, 400, b"Bad Request")
                return
            if int(declared[0]) > cap:
                await _refuse(send, 413, b"Request body too large")
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before the body was complete
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await _refuse(send, 413, b"Request body too large")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }

        async def replay() -> Message:
            # The whole body once, then the client's own messages (a disconnect).
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()

        await self._app(scope, replay, send)


async def _refuse(send: Send, status: int, text: bytes) -> None:
    # Connection: close, since the rest of the body is left unread on the socket.
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(text)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})


def create_app(
    services: Services,
    *,
    routers: list[APIRouter] | None = None,
    streamed: frozenset[str] = frozenset(),
) -> FastAPI:
    """Build the app; lifecycle stays with the process runner, not with ASGI lifespan.
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
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process runner owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebPart:
    """Serves the ASGI app with uvicorn until stopped."""

    def __init__(self, app: FastAPI, *, host: str, port: int, name: str = "web") -> None:
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
